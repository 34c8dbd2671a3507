"""EngineAdapter: the Qt face of the engine controller; tokens reach the GUI at most once a frame."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.engine.client import EngineClient
from app.engine.controller import EngineController
from app.engine.interface import Engine, EventHandler
from app.engine.protocol import (
    Crashed,
    Done,
    Error,
    Event,
    Loaded,
    LoadSettings,
    SamplingSettings,
    Unloaded,
)

FRAME_MS = 16


def _ignore(_event: Event) -> None:
    pass


class EngineAdapter(QObject):
    """The Qt face of the process's :class:`EngineController`; nothing here ever blocks the GUI thread.

    The controller keeps the request identity, drops a superseded reply's events and batches the
    tokens; this drains the batch once a frame (the first words at once) and turns events into signals.

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
                 client_factory: Callable[[EventHandler | None], Engine] | None = None) -> None:
        super().__init__(parent)
        self.delivered_tokens = 0
        self.ended_request: int | None = None  # the reply the last finished/failed/crashed signal ended
        self._flush_timer = QTimer(self)
        self._flush_timer.setInterval(FRAME_MS)
        self._flush_timer.timeout.connect(self._flush)
        self._event_arrived.connect(self._on_event)
        # The local llama.cpp worker, or a remote engine (app.remote.engine): the same Engine protocol.
        # The controller takes the engine's events (on its thread); the queued signal carries them here.
        self.client: Engine = (client_factory or EngineClient)(None)
        self.controller = EngineController(self.client, on_event=self._event_arrived.emit,
                                           wake=lambda: self._event_arrived.emit(None))

    @property
    def request_id(self) -> int | None:
        return self.controller.request_id

    @Slot()
    def _flush(self) -> None:
        batch = self.controller.drain()
        if batch is not None:
            self.delivered_tokens += batch.count
            self.tokens.emit(batch.text)

    @Slot(object)
    def _on_event(self, event: Event | None) -> None:
        if event is None:
            self._flush()
        elif isinstance(event, Loaded):
            self.loaded.emit(event.info)
        elif isinstance(event, Done):
            if self.controller.request_id is not None:
                self._end_reply()
                self.finished.emit(event.stats)
        elif isinstance(event, Error):
            if event.request_id is None or self.controller.request_id is not None:
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
        self.ended_request = self.controller.request_id
        self.controller.end()

    # ---- commands (GUI thread) ----------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.request_id is not None

    def load(self, settings: LoadSettings) -> None:
        self.client.load(settings)

    def generate(self, prompt: str, stop: Sequence[str] = (), sampling: SamplingSettings | None = None,
                 chat_id: str = "default") -> int:
        self.delivered_tokens = 0
        request = self.controller.generate(prompt, stop, sampling, chat_id)
        self._flush_timer.start()
        return request

    def stop(self) -> None:
        self.controller.stop()

    def unload(self) -> None:
        self.client.unload()

    def shutdown(self) -> None:
        """Stop any reply and end the worker process (call when the window closes)."""
        self.stop()
        self._flush_timer.stop()
        self.client.on_event = _ignore  # nothing more reaches this QObject from the reader thread
        self.client.close()
