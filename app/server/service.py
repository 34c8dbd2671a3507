"""The API server as the app runs it: start, stop, its address, and the recent requests (Qt-free)."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from app.paths import app_dirs
from app.server.api import RequestRecord
from app.server.engine_bridge import EngineBridge
from app.server.runner import BackgroundServer, ServerSettings

LOG_SIZE = 500
SETTINGS_FILE = "api_server.json"


@dataclass(frozen=True)
class ApiSettings:
    """What the app's API switch remembers between runs (the key stays in a file only the user reads)."""

    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str = ""


def load_api_settings(path: Path | None = None) -> ApiSettings:
    path = path or app_dirs().config / SETTINGS_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return ApiSettings(str(raw.get("host") or "127.0.0.1"), int(raw.get("port", 8080)),
                           str(raw.get("api_key") or ""))
    except (OSError, ValueError, TypeError, AttributeError):
        return ApiSettings()


def save_api_settings(settings: ApiSettings, path: Path | None = None) -> None:
    path = path or app_dirs().config / SETTINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump(asdict(settings), out)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)


class ApiService:
    """One API server at a time; ``on_record`` hears each request (on the server's thread)."""

    def __init__(self, on_record: Callable[[RequestRecord], None] | None = None) -> None:
        self.on_record = on_record
        self.records: deque[RequestRecord] = deque(maxlen=LOG_SIZE)
        self._server: BackgroundServer | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str | None:
        return self._server.url if self._server is not None else None

    def _record(self, record: RequestRecord) -> None:
        self.records.append(record)
        if self.on_record is not None:
            self.on_record(record)

    def start(self, host: str = "127.0.0.1", port: int = 8080, api_key: str | None = None,
              model: str | None = None) -> str:
        """Serve (blocking: call off the GUI thread); the address, or HearthError saying why not."""
        with self._lock:
            self._stop_locked()
            bridge = EngineBridge()
            try:
                if model:
                    bridge.preload(model)
                server = BackgroundServer(bridge, ServerSettings(host, port, api_key or None,
                                                                 on_request=self._record)).start()
            except BaseException:
                bridge.close()
                raise
            self._server = server
            return server.url

    def stop(self) -> None:
        """Stop serving and end the server's engine (blocking for a moment)."""
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
