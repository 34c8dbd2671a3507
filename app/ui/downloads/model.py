"""Qt list model over the download queue, refreshed by a 500 ms timer rather than per chunk."""

from __future__ import annotations

import contextlib
from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal

from app.cli.table import human_size
from app.hub.progress import format_eta, format_speed
from app.hub.queue import DownloadJob, DownloadQueue, JobState

AnyIndex = QModelIndex | QPersistentModelIndex
REFRESH_MS = 500


class Role(IntEnum):
    JOB = Qt.ItemDataRole.UserRole + 1
    STATE = Qt.ItemDataRole.UserRole + 2
    FRACTION = Qt.ItemDataRole.UserRole + 3
    DETAIL = Qt.ItemDataRole.UserRole + 4
    ACTIONS = Qt.ItemDataRole.UserRole + 5
    JOB_ID = Qt.ItemDataRole.UserRole + 6


# Buttons each state offers, in the order they are drawn (right-most last).
ACTIONS: dict[JobState, tuple[str, ...]] = {
    JobState.QUEUED: ("pause", "cancel"),
    JobState.RUNNING: ("pause", "cancel"),
    JobState.PAUSED: ("resume", "cancel"),
    JobState.FAILED: ("remove", "retry"),
    JobState.CANCELLED: ("remove",),
    JobState.DONE: ("remove", "folder", "chat"),
}
ACTION_LABELS = {"pause": "Pause", "resume": "Resume", "cancel": "Cancel", "retry": "Retry",
                 "remove": "Clear", "folder": "Show folder", "chat": "Chat with it", "smaller": "Smaller file"}


def chat_path(job: DownloadJob) -> str | None:
    """The GGUF file to chat with once a job is done (the first shard of a sharded model)."""
    ggufs = sorted(str(p) for p in job.paths if p.suffix == ".gguf")
    return ggufs[0] if ggufs else None


def detail_text(job: DownloadJob) -> str:
    done, total = human_size(job.done_bytes), human_size(job.total_bytes) if job.total_bytes else "?"
    match job.state:
        case JobState.RUNNING:
            parts = [f"{done} of {total}", format_speed(job.speed), f"{format_eta(job.eta)} left"]
            if job.phase:
                parts.append(job.phase)
            return " · ".join(parts)
        case JobState.QUEUED:
            return "Waiting for a free slot"
        case JobState.PAUSED:
            return f"Paused at {done} of {total}: resume continues from there"
        case JobState.DONE:
            return f"Finished · {total} · checksums verified"
        case JobState.FAILED:
            return job.error or "Failed"
        case JobState.CANCELLED:
            return "Cancelled: the partial files were deleted"
    return ""


class _Bridge(QObject):
    """Carries queue events from worker threads to the GUI thread.

    Signals:
        changed(int): the job with this id changed state (or was added or removed).
    """

    changed = Signal(int)


class JobListModel(QAbstractListModel):
    """Rows over a job queue (anything with ``jobs()``, ``subscribe()``, ``unsubscribe()``).

    Rows are added and removed only on the GUI thread, when a queue event arrives; progress is
    re-read for all rows at once every 500 ms while a job is active. Subclasses say what a state
    change means (``_state_changed``) and provide ``data``.
    """

    def __init__(self, queue: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self._jobs: list[Any] = []
        self._states: dict[int, Any] = {}
        self._bridge = _Bridge(self)
        self._bridge.changed.connect(self._sync)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self._tick)
        queue.subscribe(self._on_queue_event)
        self.destroyed.connect(lambda *_: queue.unsubscribe(self._on_queue_event))
        self._sync()

    def _on_queue_event(self, job: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the model is gone (window closing)
            self._bridge.changed.emit(job.id)

    # -- keeping up with the queue ------------------------------------------
    def _sync(self, _job_id: int = 0) -> None:
        current = self.queue.jobs()
        ids = {j.id for j in current}
        for row in reversed(range(len(self._jobs))):
            if self._jobs[row].id not in ids:
                self.beginRemoveRows(QModelIndex(), row, row)
                self._states.pop(self._jobs[row].id, None)
                del self._jobs[row]
                self.endRemoveRows()
        known = {j.id for j in self._jobs}
        for job in current:
            if job.id not in known:
                row = len(self._jobs)
                self.beginInsertRows(QModelIndex(), row, row)
                self._jobs.append(job)
                self.endInsertRows()
        changed = False
        for row, job in enumerate(self._jobs):
            before = self._states.get(job.id)
            if before is not job.state:
                self._states[job.id] = job.state
                changed = True
                self.dataChanged.emit(self.index(row), self.index(row))
                self._state_changed(job, before)
        if any(j.state.active for j in self._jobs):
            if not self._timer.isActive():
                self._timer.start()
        else:
            self._timer.stop()
        if changed:
            self._states_changed()

    def _state_changed(self, job: Any, before: Any) -> None:
        """A job's state changed (``before`` is None for a job just added)."""

    def _states_changed(self) -> None:
        """Some job changed state during one sync."""

    def _tick(self) -> None:
        """One dataChanged for all rows, twice a second, whatever the progress rate."""
        if self._jobs:
            self.dataChanged.emit(self.index(0), self.index(len(self._jobs) - 1), self._progress_roles())

    def _progress_roles(self) -> list[int]:
        return [Role.FRACTION, Role.DETAIL]

    def row_of(self, job_id: int) -> int:
        return next((i for i, j in enumerate(self._jobs) if j.id == job_id), -1)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._jobs)


class DownloadListModel(JobListModel):
    """One row per download job.

    Signals:
        finished(object): a DownloadJob has just finished and been verified.
        states_changed(): some job changed state (for counters and badges).
    """

    finished = Signal(object)
    states_changed = Signal()

    def __init__(self, queue: DownloadQueue, parent: QObject | None = None) -> None:
        super().__init__(queue, parent)

    def _state_changed(self, job: DownloadJob, before: JobState | None) -> None:
        if job.state is JobState.DONE and before is not None:
            self.finished.emit(job)

    def _states_changed(self) -> None:
        self.states_changed.emit()

    def _tick(self) -> None:
        for job in self._jobs:
            job.sample()
        super()._tick()

    def _progress_roles(self) -> list[int]:
        return [Role.FRACTION, Role.DETAIL, Qt.ItemDataRole.DisplayRole]

    def job_at(self, row: int) -> DownloadJob:
        job: DownloadJob = self._jobs[row]
        return job

    def counts(self) -> dict[JobState, int]:
        result = dict.fromkeys(JobState, 0)
        for job in self._jobs:
            result[job.state] += 1
        return result

    # -- Qt model interface -------------------------------------------------
    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._jobs)) or index.column() != 0:
            return None
        job = self._jobs[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return job.title
        if role == Qt.ItemDataRole.ToolTipRole:
            return "\n".join([job.title, detail_text(job), *(str(p) for p in job.paths)])
        if role == Role.JOB:
            return job
        if role == Role.JOB_ID:
            return job.id
        if role == Role.STATE:
            return job.state.value
        if role == Role.FRACTION:
            return 1.0 if job.state is JobState.DONE else job.fraction
        if role == Role.DETAIL:
            return detail_text(job)
        if role == Role.ACTIONS:
            actions = ACTIONS[job.state]
            return [a for a in actions if a != "chat" or chat_path(job)]
        return None
