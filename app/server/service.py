"""The API server as the app runs it: start, stop, its address, and the recent requests (Qt-free)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from app.server.api import RequestRecord
from app.server.engine_bridge import EngineBridge
from app.server.runner import BackgroundServer, ServerSettings

LOG_SIZE = 500


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
