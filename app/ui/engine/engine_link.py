"""EngineLink: the window's one Qt face of the process's engine controller (load planning off the GUI
thread, events as signals, streamed tokens drained once a frame)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.engine.chat_session import plan_load
from app.engine.controller import EngineController, local_engine
from app.engine.interface import Engine
from app.engine.load_preferences import load_preferences
from app.engine.offload import OffloadPlan
from app.engine.protocol import (
    Crashed,
    Done,
    Error,
    Event,
    Loaded,
    LoadSettings,
    ModelInfo,
    SamplingSettings,
    Unloaded,
)
from app.engine.rpc import active_remote_machines
from app.engine.thread_setting import load_thread_setting
from app.errors import HearthError
from app.formats.gguf_meta import read_gguf_metadata
from app.paths import app_dirs
from app.remote.endpoints import Endpoint, EndpointStore
from app.remote.engine import RemoteEngine
from app.remote.messages import parse_remote_path
from app.ui.workers import LatestWorker

FRAME_MS = 16  # tokens reach the GUI at most once a frame


def describe_load(info: ModelInfo, plan: OffloadPlan | None = None) -> str:
    """The loaded state in a line: where the layers run (the offload plan) and the context."""
    if info.architecture == "remote":
        return f"Ready  ·  {info.name}"
    if plan is not None and plan.n_gpu_layers > 0:
        return f"Ready  ·  {plan}  ·  {info.n_ctx:,}-token context"
    if plan is not None:
        return f"Ready  ·  CPU  ·  {plan.ram_bytes / 1e9:.1f} GB RAM  ·  {info.n_ctx:,}-token context"
    if info.n_gpu_layers <= 0:
        where = "CPU only" if info.gpu_offload_supported else "CPU only (no GPU in this build)"
    elif info.n_gpu_layers >= info.n_layer:
        where = f"all {info.n_layer} layers on the GPU"
    else:
        where = f"{info.n_gpu_layers} of {info.n_layer} layers on the GPU, the rest on the CPU"
    return f"Ready  ·  {where}  ·  {info.n_ctx:,}-token context"


def plan_local_load(path: str) -> tuple[LoadSettings, OffloadPlan] | str:
    """Settings and offload plan for ``path``, or why it cannot be loaded (runs off the GUI thread)."""
    try:
        settings_file = app_dirs().settings_file
        threads = load_thread_setting(settings_file)  # "auto" unless the user fixed it
        preferences, _problems = load_preferences(settings_file, path)  # the panel names bad saved values
        return plan_load(Path(path), read_gguf_metadata(path), rpc=active_remote_machines(), n_threads=threads,
                         **preferences.plan_arguments())
    except HearthError as exc:
        return str(exc)
    except Exception as exc:  # a broken file or probe must not kill the page
        return f"cannot plan loading {Path(path).name}: {exc}"


def _remote_factory(endpoint: Endpoint) -> Engine:
    return RemoteEngine(endpoint, None)


class EngineLink(QObject):
    """The window's view of the engine: load planning, and what happened to the reply it asked for.

    The request identity, stale results and token batching are the :class:`EngineController`'s
    (one per process, ``AppServices.engine``; a private one when none is given); this keeps no copy of
    them. The controller's events arrive on the engine's thread and are re-emitted here on the GUI
    thread; the batched tokens are drained once a frame (the first words at once).
    The engine starts on the first load, not when the link is built.

    Signals:
        loaded(object): ModelInfo of the model now loaded.
        load_failed(str): why the model could not be loaded.
        unloaded(): the model was freed (or lost in a crash).
        tokens(int, str): request id and new text (coalesced to the frame rate).
        done(int, object): request id and its GenerationStats (EOS, stop string, limit or stop()).
        failed(int, str): request id (-1 when none) and what went wrong.
        crashed(str): the worker process died and was restarted (said by load_failed/failed too).
    """

    loaded = Signal(object)
    load_failed = Signal(str)
    unloaded = Signal()
    tokens = Signal(int, str)
    done = Signal(int, object)
    failed = Signal(int, str)
    crashed = Signal(str)
    _event_arrived = Signal(object)

    def __init__(self, parent: QObject | None = None, controller: EngineController | None = None) -> None:
        super().__init__(parent)
        self.controller = controller if controller is not None else EngineController()
        self._remote_path = ""
        self._loading = False
        self.info: ModelInfo | None = None
        self.plan: OffloadPlan | None = None
        self.delivered_tokens = 0  # tokens of the current (or last) reply shown so far
        self._planner: LatestWorker[tuple[LoadSettings, OffloadPlan] | str] = LatestWorker(self._planned, parent=self)
        self._flush_timer = QTimer(self, interval=FRAME_MS)
        self._flush_timer.timeout.connect(self._flush)
        self._event_arrived.connect(self._on_event)
        self.controller.attach(self._event_arrived.emit, wake=lambda: self._event_arrived.emit(None))

    # ---- state -----------------------------------------------------------------------------------

    @property
    def loading(self) -> bool:
        return self._loading

    @property
    def request_id(self) -> int | None:
        return self.controller.request_id

    @property
    def busy(self) -> bool:
        return self.request_id is not None

    # ---- commands (GUI thread) -----------------------------------------------------------------

    def load(self, path: str) -> None:
        """Plan the load (GGUF header, GPU probe) off the GUI thread, then load.

        A later ``load`` supersedes this one: its plan is dropped, so the last model asked for is the one loaded.
        """
        self._loading = True
        self.info = None
        self.plan = None
        remote = parse_remote_path(path)
        if remote is None:
            self._planner.submit(lambda: plan_local_load(path))
            return
        self._planner.cancel()  # a local load still being planned is superseded too
        endpoint = EndpointStore().find(remote[0])
        if endpoint is None:
            self._loading = False
            self.load_failed.emit(f"the endpoint {remote[0]!r} is no longer in your settings: "
                                  "add it again under Settings > Remote endpoints")
            return
        self._remote_path = path
        self.controller.use(endpoint.name, lambda: _remote_factory(endpoint))
        self.controller.load(LoadSettings(remote[1]))

    def load_settings(self, settings: LoadSettings) -> None:
        """Load on the local worker with these settings, as they are (no planning)."""
        self._loading = True
        self.info = None
        self._planner.cancel()
        self.controller.use(None, local_engine)
        self.controller.load(settings)

    def _planned(self, outcome: tuple[LoadSettings, OffloadPlan] | str) -> None:
        if isinstance(outcome, str):
            self._loading = False
            self.load_failed.emit(outcome)
            return
        settings, self.plan = outcome
        self.controller.use(None, local_engine)
        self.controller.load(settings)

    def cancel_load(self) -> None:
        """Stop the load under way. llama.cpp cannot stop a load half-way, so a load that reached the
        worker ends the worker (a fresh one starts with the next load); ``load_failed`` says it."""
        if not self._loading:
            return
        self._planner.cancel()
        self._loading = False
        self.info = None
        self.plan = None
        if self.controller.started:
            self.controller.close()
        self.load_failed.emit("Loading was cancelled.")

    def unload(self) -> None:
        if self.controller.started:
            self.info = None
            self.controller.unload()

    def generate(self, prompt: str, stop: Sequence[str] = (), sampling: SamplingSettings | None = None,
                 chat_id: str = "default") -> int:
        self.delivered_tokens = 0
        request = self.controller.generate(prompt, stop, sampling, chat_id)
        self._flush_timer.start()
        return request

    def stop(self, request_id: int | None = None) -> None:
        """Stop the reply ``request_id`` (the current one when None); Done follows."""
        self.controller.stop(request_id)

    def shutdown(self) -> None:
        """End the reply and the engine (the window is closing); nothing more reaches this object."""
        self._planner.cancel()
        self._flush_timer.stop()
        self.controller.stop()
        self.controller.attach(lambda _event: None)
        self.controller.close()
        self.info = None

    # ---- events (GUI thread) -------------------------------------------------------------------

    @Slot()
    def _flush(self) -> None:
        batch = self.controller.drain()
        if batch is not None and batch.text:
            self.delivered_tokens += batch.count
            self.tokens.emit(batch.request_id, batch.text)

    def _end_reply(self) -> int:
        """Close the reply in progress (its last words shown first); its id, or -1 when none ran."""
        self._flush_timer.stop()
        self._flush()
        request = self.controller.request_id
        self.controller.end()
        return request if request is not None else -1

    @Slot(object)
    def _on_event(self, event: Event | None) -> None:
        if event is None:
            self._flush()
        elif isinstance(event, Loaded):
            info = event.info
            if info.architecture == "remote":  # the page knows it by its remote:NAME/MODEL path
                info = replace(info, path=self._remote_path)
            self._loading = False
            self.info = info
            self.loaded.emit(info)
        elif isinstance(event, Done):
            if self.controller.request_id is not None:
                self.done.emit(self._end_reply(), event.stats)
        elif isinstance(event, Error):
            if event.request_id is None or self.controller.request_id is not None:
                self._report(self._end_reply(), event.message)
        elif isinstance(event, Crashed):
            request = self._end_reply()
            self.info = None
            self.crashed.emit(event.message)
            if not (self._loading and self._planner.busy):
                # a load still being planned never reached the worker that died (it was
                # unloading the last model, say): it goes on, on a fresh worker
                self._report(request, event.message)
            self.unloaded.emit()
        elif isinstance(event, Unloaded):
            self.info = None
            self.unloaded.emit()

    def _report(self, request: int, message: str) -> None:
        if self._loading:
            self._loading = False
            self.load_failed.emit(message)
        else:
            self.failed.emit(request, message)
