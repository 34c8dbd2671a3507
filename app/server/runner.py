"""Run the API on uvicorn: in the foreground (``hearth serve``) or on a thread (the app, tests)."""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from app.errors import HearthError
from app.server.api import RequestLog, create_app
from app.server.engine_bridge import EngineBridge


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, api_key: str | None) -> str | None:
    """What to tell the user before serving on ``host`` (None when it is safe)."""
    if is_loopback(host) or api_key:
        return None
    return (f"the API on {host} can be reached from other machines and has no API key: anyone "
            "who can reach this address can use your models. Add --api-key KEY, or bind 127.0.0.1.")


def url_for(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/v1"


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (port 0: any free one); a clear error when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise HearthError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): "
                          "choose another --port or --host") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    on_request: RequestLog | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def make_server(bridge: EngineBridge, settings: ServerSettings) -> uvicorn.Server:
    app = create_app(bridge, api_key=settings.api_key, cors_origins=settings.cors_origins,
                     on_request=settings.on_request)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=3, **settings.extra)
    return uvicorn.Server(config)


class BackgroundServer:
    """The API served from a thread; :meth:`stop` ends it. ``url`` is its base address."""

    def __init__(self, bridge: EngineBridge, settings: ServerSettings) -> None:
        self.bridge = bridge
        self.settings = settings
        self.socket = bind(settings.host, settings.port)
        self.port = self.socket.getsockname()[1]
        self.url = url_for(settings.host, self.port)
        self.server = make_server(bridge, settings)
        self.thread = threading.Thread(target=self._run, name="api-server", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.socket])
        except BaseException as exc:  # reported through .error
            self.error = exc

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self.thread.start()
        waited = 0.0
        while not self.server.started and self.thread.is_alive() and waited < timeout:
            threading.Event().wait(0.02)
            waited += 0.02
        if not self.server.started:
            raise HearthError(f"the API server did not start: {self.error or 'timed out'}")
        return self

    def stop(self, close_engine: bool = True) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()
        if close_engine:
            self.bridge.close()
