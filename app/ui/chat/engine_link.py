"""The chat page's line to the inference engine (app.ui.engine's adapter), started on first use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from app.engine.chat_session import plan_load
from app.engine.offload import OffloadPlan
from app.engine.protocol import Event, LoadSettings, ModelInfo, SamplingSettings
from app.engine.rpc import active_remote_machines
from app.engine.thread_setting import load_thread_setting
from app.errors import HearthError
from app.formats.gguf_meta import read_gguf_metadata
from app.paths import app_dirs
from app.remote.endpoints import Endpoint, EndpointStore
from app.remote.engine import RemoteEngine
from app.remote.messages import parse_remote_path
from app.ui.workers import LatestWorker

if TYPE_CHECKING:
    from app.ui.engine.engine_adapter import EngineAdapter


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


def _plan(path: str) -> tuple[LoadSettings, OffloadPlan] | str:
    """Settings and offload plan for ``path``, or why it cannot be loaded (runs off the GUI thread)."""
    try:
        threads = load_thread_setting(app_dirs().settings_file)  # "auto" unless the user fixed it
        return plan_load(Path(path), read_gguf_metadata(path), rpc=active_remote_machines(), n_threads=threads)
    except HearthError as exc:
        return str(exc)
    except Exception as exc:  # a broken file or probe must not kill the page
        return f"cannot plan loading {Path(path).name}: {exc}"


class EngineLink(QObject):
    """The page's view of the engine: load planning, and what happened to the reply it asked for.

    The request identity, stale results and token batching are the engine controller's
    (``app.engine.controller``, through the adapter); this keeps no copy of them.

    The worker process starts on the first load, not when the page is built.

    Signals:
        loaded(object): ModelInfo of the model now loaded.
        load_failed(str): why the model could not be loaded.
        unloaded(): the model was freed (or lost in a crash).
        tokens(int, str): request id and new text (already coalesced to the frame rate).
        done(int, object): request id and its GenerationStats.
        failed(int, str): request id (-1 when none) and what went wrong.
    """

    loaded = Signal(object)
    load_failed = Signal(str)
    unloaded = Signal()
    tokens = Signal(int, str)
    done = Signal(int, object)
    failed = Signal(int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._adapter: EngineAdapter | None = None
        self._remote: str | None = None  # the endpoint the adapter talks to; None: the local worker
        self._remote_path = ""
        self._loading = False
        self.info: ModelInfo | None = None
        self.plan: OffloadPlan | None = None
        self._planner: LatestWorker[tuple[LoadSettings, OffloadPlan] | str] = LatestWorker(self._planned, parent=self)

    def _ensure(self, remote: Endpoint | None) -> EngineAdapter:
        wanted = remote.name if remote is not None else None
        if self._adapter is not None and self._remote != wanted:  # switching local <-> remote
            self.shutdown()
        if self._adapter is None:
            from app.ui.engine.engine_adapter import EngineAdapter

            factory = None
            if remote is not None:
                def factory(on_event: Callable[[Event], None] | None) -> Any:
                    return RemoteEngine(remote, on_event)
            adapter = EngineAdapter(self, factory)
            self._remote = wanted
            adapter.loaded.connect(self._on_loaded)
            adapter.failed.connect(self._on_failed)
            adapter.crashed.connect(self._on_crashed)
            adapter.unloaded.connect(self._on_unloaded)
            adapter.tokens.connect(self._on_tokens)
            adapter.finished.connect(self._on_finished)
            self._adapter = adapter
        return self._adapter

    @property
    def loading(self) -> bool:
        return self._loading

    def load(self, path: str) -> None:
        """Plan the load (GGUF header, GPU probe) off the GUI thread, then load.

        A later ``load`` supersedes this one: its plan is dropped, so the last model asked for is the one loaded.
        """
        self._loading = True
        self.info = None
        self.plan = None
        remote = parse_remote_path(path)
        if remote is not None:
            self._planner.cancel()  # a local load still being planned is superseded too
            endpoint = EndpointStore().find(remote[0])
            if endpoint is None:
                self._loading = False
                self.load_failed.emit(f"the endpoint {remote[0]!r} is no longer in your settings: "
                                      "add it again under Settings > Remote endpoints")
                return
            self._remote_path = path
            self._ensure(endpoint).load(LoadSettings(remote[1]))
            return
        self._planner.submit(lambda: _plan(path))

    def _planned(self, outcome: tuple[LoadSettings, OffloadPlan] | str) -> None:
        if isinstance(outcome, str):
            self._loading = False
            self.load_failed.emit(outcome)
            return
        settings, self.plan = outcome
        self._ensure(None).load(settings)

    def unload(self) -> None:
        if self._adapter is not None:
            self.info = None
            self._adapter.unload()

    def generate(self, prompt: str, stop: Sequence[str], sampling: SamplingSettings,
                 chat_id: str) -> int:
        return (self._adapter or self._ensure(None)).generate(prompt, stop, sampling, chat_id)

    def stop(self, request_id: int) -> None:
        if self._adapter is not None and request_id == self._adapter.request_id:
            self._adapter.stop()

    def shutdown(self) -> None:
        if self._adapter is not None:
            self._adapter.shutdown()
            self._adapter.deleteLater()
            self._adapter = None
            self._remote = None

    def _on_loaded(self, info: ModelInfo) -> None:
        if info.architecture == "remote":  # the page knows it by its remote:NAME/MODEL path
            info = replace(info, path=self._remote_path)
        self._loading = False
        self.info = info
        self.loaded.emit(info)

    def _on_failed(self, message: str) -> None:
        if self._loading:
            self._loading = False
            self.load_failed.emit(message)
            return
        self.failed.emit(self._ended(), message)

    def _ended(self) -> int:
        """The reply the adapter just ended (-1 when none was running)."""
        request = self._adapter.ended_request if self._adapter is not None else None
        return request if request is not None else -1

    def _on_crashed(self, message: str) -> None:
        self.info = None
        if self._loading:
            self._loading = False
            self.load_failed.emit(message)
        else:
            self.failed.emit(self._ended(), message)
        self.unloaded.emit()

    def _on_unloaded(self) -> None:
        self.info = None
        self.unloaded.emit()

    def _on_tokens(self, text: str) -> None:
        request = self._adapter.request_id if self._adapter is not None else None
        if request is not None and text:
            self.tokens.emit(request, text)

    def _on_finished(self, stats: object) -> None:
        request = self._ended()
        if request != -1:
            self.done.emit(request, stats)
