"""Qt list model over the conversion jobs, in the download rows' roles so the same card delegate paints them."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from app.catalog.installed import Alternative
from app.cli.table import human_size
from app.convert.jobs import ConversionJob, ConversionQueue, ConversionState
from app.hub.progress import format_speed
from app.hub.queue import JobState
from app.ui.downloads.model import AnyIndex, JobListModel, Role, detail_text

# How each conversion state is painted by the download card (colour of the bar) and which buttons it offers.
CARD_STATE = {
    ConversionState.DOWNLOADING: JobState.RUNNING, ConversionState.WAITING: JobState.QUEUED,
    ConversionState.CONVERTING: JobState.RUNNING, ConversionState.REQUANTIZING: JobState.RUNNING,
    ConversionState.MEASURING: JobState.RUNNING, ConversionState.DONE: JobState.DONE,
    ConversionState.FAILED: JobState.FAILED,
    ConversionState.CANCELLED: JobState.CANCELLED,
}
ACTIONS: dict[ConversionState, tuple[str, ...]] = {
    ConversionState.DOWNLOADING: ("cancel",), ConversionState.WAITING: ("cancel",),
    ConversionState.CONVERTING: ("cancel",), ConversionState.REQUANTIZING: ("cancel",),
    ConversionState.MEASURING: ("cancel",),
    ConversionState.DONE: ("remove", "folder", "chat"), ConversionState.FAILED: ("remove", "retry"),
    ConversionState.CANCELLED: ("remove", "retry"),
}


def smaller_choice(job: ConversionJob) -> Alternative | None:
    """The measured requantised type smaller than a finished exact conversion (3-bit in Q4_0), if any."""
    result = job.result
    if job.state is not ConversionState.DONE or result is None or result.choice:
        return None
    smaller = [a for a in result.alternatives if a.size < result.size]
    return min(smaller, key=lambda a: a.size) if smaller else None


def stage_text(job: ConversionJob) -> str:
    """The row's second line: which stage, how far, and what happens next."""
    target = (job.out_type or "GGUF").upper()
    match job.state:
        case ConversionState.DOWNLOADING:
            download = job.download
            if download is not None and download.state is JobState.PAUSED:
                return "Step 1 of 2: download paused; resume it below, then it converts"
            text = detail_text(download) if download is not None else ""
            return f"Step 1 of 2: downloading the branch · {text}"
        case ConversionState.WAITING:
            return "Step 2 of 2: waiting for another conversion to finish"
        case ConversionState.CONVERTING:
            percent = 100 * job.done_bytes / job.total_bytes if job.total_bytes else 0.0
            what = "writing the F16 model to measure against" if job.write_stage == "reference" else \
                ("writing the exact GPTQ weights" if job.mode.startswith("exact") else "dequantising")
            into = f" as {target}" if job.write_stage != "reference" and job.mode.startswith("exact") else ""
            return (f"Step 2 of 2: {what}{into} · {percent:.0f}% of "
                    f"{human_size(job.total_bytes)} read · {format_speed(job.rate)}")
        case ConversionState.REQUANTIZING:
            kind = (job.stage_label or target).upper()
            return f"Step 2 of 2: llama.cpp is requantising to {kind}…"
        case ConversionState.MEASURING:
            kind = (job.stage_label or target).upper()
            return f"Step 2 of 2: measuring {kind} against the exact F16 model (KL divergence, top-1)…"
        case ConversionState.DONE:
            result = job.result
            if result is None:
                return f"Converted for llama.cpp · {target}"
            quality = f" · {result.quality.summary}" if result.quality else ""
            mode = f" · {result.mode}" if result.mode else ""
            return f"Converted for llama.cpp · {target} · {human_size(result.size)}{mode}{quality} · ready to chat"
        case ConversionState.FAILED:
            return f"Conversion failed: {job.error}"
        case ConversionState.CANCELLED:
            return "Cancelled: no converted file was left behind"
    return ""


class ConversionListModel(JobListModel):
    """One row per conversion job, in the download rows' roles.

    Signals:
        finished(object): a ConversionJob has just converted its branch.
        failed(object): a ConversionJob has just failed (its ``error`` says why).
    """

    finished = Signal(object)
    failed = Signal(object)

    def __init__(self, queue: ConversionQueue, parent: QObject | None = None) -> None:
        super().__init__(queue, parent)

    def _state_changed(self, job: ConversionJob, before: ConversionState | None) -> None:
        if job.state is ConversionState.DONE:
            self.finished.emit(job)
        elif job.state is ConversionState.FAILED:
            self.failed.emit(job)

    def job_at(self, row: int) -> ConversionJob:
        job: ConversionJob = self._jobs[row]
        return job

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._jobs)) or index.column() != 0:
            return None
        job = self._jobs[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"Convert for llama.cpp: {job.title}"
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [job.title, stage_text(job), *job.plan]
            if job.result is not None:
                lines.append(str(job.result.path))
                lines += [job.result.choice] if job.result.choice else []
                smaller = smaller_choice(job)
                if smaller is not None:
                    figures = f", {smaller.quality.summary} against the F16 model" if smaller.quality else ""
                    lines.append(f"Smaller file: {smaller.out_type.upper()} requantised, {human_size(smaller.size)}"
                                 f"{figures}")
            return "\n".join(lines)
        if role == Role.JOB:
            return job
        if role == Role.JOB_ID:
            return job.id
        if role == Role.STATE:
            return CARD_STATE[job.state].value
        if role == Role.FRACTION:
            return job.fraction
        if role == Role.DETAIL:
            return stage_text(job)
        if role == Role.ACTIONS:
            return list(ACTIONS[job.state]) + (["smaller"] if smaller_choice(job) is not None else [])
        return None
