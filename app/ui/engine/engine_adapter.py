"""EngineAdapter: the Qt face of the engine client; tokens reach the GUI at most once a frame."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.engine.client import EngineClient
from app.engine.protocol import (
    Crashed,
    Done,
    Error,
    Event,
    Loaded,
    LoadSettings,
    SamplingSettings,
    Tokens,
    Unloaded,
)

FRAME_MS = 16


def _ignore(_event: Event) -> None:
    pass


class EngineAdapter(QObject):
    """Wraps :class:`EngineClient` for the GUI thread; nothing here ever blocks it.

    Signals:
        loaded(ModelInfo): a model is ready.
        tokens(str): new reply text, coalesced to one emission per frame (~16 ms).
        finished(GenerationStats): the reply ended (EOS, stop string, limit or stop()).
        failed(str): a load or generation failed; the message says what to do.
        crashed(str): the worker process died and was restarted; the model is unloaded.
        unloaded(): the model was released.
    """

    loaded = Signal(object)
    tokens = Signal(str)
    finished = Signal(object)
    failed = Signal(str)
    crashed = Signal(str)
    unloaded = Signal()
    _event_arrived = Signal(object)

    def __init__(self, parent: QObject | None = None,
                 client_factory: Callable[[Callable[[Event], None]], EngineClient] | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._pending_count = 0
        self._first_of_reply = False
        self.delivered_tokens = 0
        self.request_id: int | None = None
        self._flush_timer = QTimer(self)
        self._flush_timer.setInterval(FRAME_MS)
        self._flush_timer.timeout.connect(self._flush)
        self._event_arrived.connect(self._on_event)
        # A remote engine (app.remote.engine) offers the same methods and events.
        self.client = (client_factory or EngineClient)(self._from_reader_thread)

    # Runs on the client's reader thread: buffer tokens, forward everything else.
    def _from_reader_thread(self, event: Event) -> None:
        if isinstance(event, Tokens):
            with self._lock:
                first = self._first_of_reply
                self._first_of_reply = False
                self._pending.append(event.text)
                self._pending_count += event.count
            if first:  # the first words show at once; the rest wait for the next frame
                self._event_arrived.emit(None)
            return
        self._event_arrived.emit(event)

    @Slot()
    def _flush(self) -> None:
        with self._lock:
            text = "".join(self._pending)
            count = self._pending_count
            self._pending.clear()
            self._pending_count = 0
        self.delivered_tokens += count
        if text:
            self.tokens.emit(text)

    @Slot(object)
    def _on_event(self, event: Event | None) -> None:
        if event is None:
            self._flush()
        elif isinstance(event, Loaded):
            self.loaded.emit(event.info)
        elif isinstance(event, Done):
            if event.request_id == self.request_id:
                self._end_reply()
                self.finished.emit(event.stats)
        elif isinstance(event, Error):
            if event.request_id is None or event.request_id == self.request_id:
                self._end_reply()
                self.failed.emit(event.message)
        elif isinstance(event, Crashed):
            self._end_reply()
            self.crashed.emit(event.message)
        elif isinstance(event, Unloaded):
            self.unloaded.emit()

    def _end_reply(self) -> None:
        self._flush_timer.stop()
        self._flush()
        self.request_id = None

    # ---- commands (GUI thread) ----------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.request_id is not None

    def load(self, settings: LoadSettings) -> None:
        self.client.load(settings)

    def generate(self, prompt: str, stop: Sequence[str] = (), sampling: SamplingSettings | None = None,
                 chat_id: str = "default") -> int:
        self.delivered_tokens = 0
        with self._lock:
            self._first_of_reply = True
        self.request_id = self.client.generate(prompt, stop, sampling, chat_id)
        self._flush_timer.start()
        return self.request_id

    def stop(self) -> None:
        if self.request_id is not None:
            self.client.stop(self.request_id)

    def unload(self) -> None:
        self.client.unload()

    def shutdown(self) -> None:
        """Stop any reply and end the worker process (call when the window closes)."""
        self.stop()
        self._flush_timer.stop()
        self.client.on_event = _ignore  # nothing more reaches this QObject from the reader thread
        self.client.close()
