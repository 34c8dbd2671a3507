"""ModelProbe: read a GGUF header and plan its load on a worker thread, answer with a signal."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.engine.chat_session import plan_load
from app.engine.offload import OffloadPlan
from app.engine.protocol import LoadSettings
from app.errors import HearthError
from app.formats.gguf_meta import GGUFMetadata, read_gguf_metadata


@dataclass(frozen=True)
class ProbeResult:
    """What the model bar shows before loading: the file's metadata, settings and offload plan."""

    path: Path
    meta: GGUFMetadata
    settings: LoadSettings
    plan: OffloadPlan


class ModelProbe(QObject):
    """Reads metadata and plans GPU offload off the GUI thread.

    Signals:
        probed(ProbeResult): the header was read and a load planned.
        failed(str, str): the path and why its header could not be read.
    """

    probed = Signal(object)
    failed = Signal(str, str)

    def probe(self, path: str | Path, *, ctx: int | None = None, gpu_layers: int | None = None) -> None:
        """Start reading ``path``; the answer comes as ``probed`` or ``failed``."""
        threading.Thread(target=self._run, args=(Path(path), ctx, gpu_layers),
                         name="model-probe", daemon=True).start()

    def _run(self, path: Path, ctx: int | None, gpu_layers: int | None) -> None:
        try:
            meta = read_gguf_metadata(path)
            settings, plan = plan_load(path, meta, ctx=ctx, gpu_layers=gpu_layers)
        except HearthError as exc:
            self.failed.emit(str(path), str(exc))
            return
        self.probed.emit(ProbeResult(path, meta, settings, plan))
