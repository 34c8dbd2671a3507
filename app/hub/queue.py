"""The download queue: jobs run in worker threads, a few at a time, with pause, resume and cancel.

Listeners passed to :meth:`DownloadQueue.subscribe` are called from worker threads with the job
whose state changed; progress (bytes) is not announced, readers poll :attr:`DownloadJob.done_bytes`
at their own pace (the GUI every 500 ms).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from app.errors import HearthError
from app.hub import importer
from app.hub.errors import DownloadStopped
from app.hub.job_list import JobList
from app.hub.plan import DownloadPlan, DownloadRequest, discard_partials, execute, plan
from app.hub.progress import RateMeter, eta_seconds
from app.hub.transfer import Control

SourceFetcher = Callable[[DownloadRequest, Path], Path]  # (request, models folder) -> the file fetched


class JobState(Enum):
    QUEUED = "queued"
    RUNNING = "downloading"
    PAUSED = "paused"
    DONE = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in (JobState.QUEUED, JobState.RUNNING)


@dataclass(eq=False)
class DownloadJob:
    """One row of the queue. Fields are written by its worker thread and read by anyone."""

    id: int
    request: DownloadRequest
    state: JobState = JobState.QUEUED
    done_bytes: int = 0
    total_bytes: int = 0
    phase: str = ""
    error: str | None = None
    paths: list[Path] = field(default_factory=list)
    meter: RateMeter = field(default_factory=RateMeter)
    control: Control = field(default_factory=Control)

    @property
    def title(self) -> str:
        return self.request.label

    @property
    def fraction(self) -> float:
        return min(self.done_bytes / self.total_bytes, 1.0) if self.total_bytes else 0.0

    @property
    def speed(self) -> float:
        return self.meter.speed if self.state is JobState.RUNNING else 0.0

    @property
    def eta(self) -> float | None:
        return eta_seconds(self.done_bytes, self.total_bytes, self.speed)

    def sample(self) -> None:
        """Record the byte count now for the speed figure (called by whoever displays it)."""
        if self.state is JobState.RUNNING:
            self.meter.add(self.done_bytes)


class DownloadQueue(JobList[DownloadJob]):
    """Jobs in order of arrival; at most ``max_active`` run at once. Thread-safe."""

    def __init__(self, models_dir: Path, max_active: int = 2, store: Path | None = None,
                 fetchers: dict[str, SourceFetcher] | None = None) -> None:
        super().__init__()
        self.models_dir = models_dir
        # Sources that are not the Hub ("pypi": the starter's wheel), given by the layer that knows them
        # (app.catalog.downloads), so the hub never imports the catalogue.
        self.fetchers: dict[str, SourceFetcher] = dict(fetchers or {})
        self.max_active = max_active
        self._store = store
        self._threads: dict[int, threading.Thread] = {}
        self._closed = False

    def _announce(self, job: DownloadJob) -> None:
        super()._announce(job)
        self._save()

    # -- commands ----------------------------------------------------------
    def add(self, request: DownloadRequest) -> DownloadJob:
        """Queue a request; the same request already waiting or running is returned instead."""
        with self._lock:
            for job in self._jobs:
                if job.request == request and job.state in (JobState.QUEUED, JobState.RUNNING, JobState.PAUSED):
                    if job.state is JobState.PAUSED:
                        self.resume(job.id)
                    return job
            job = DownloadJob(next(self._ids), request, total_bytes=request.size_hint)
            self._jobs.append(job)
        self._announce(job)
        self._schedule()
        return job

    def pause(self, job_id: int) -> None:
        job = self.job(job_id)
        with self._lock:
            if job.state is JobState.QUEUED:
                job.state = JobState.PAUSED
            elif job.state is JobState.RUNNING:
                job.control.pause()
                return
            else:
                return
        self._announce(job)

    def resume(self, job_id: int) -> None:
        """Queue a paused or failed job again; it picks up from the bytes on disk."""
        job = self.job(job_id)
        with self._lock:
            if job.state not in (JobState.PAUSED, JobState.FAILED):
                return
            job.state, job.error, job.control = JobState.QUEUED, None, Control()
        self._announce(job)
        self._schedule()

    def cancel(self, job_id: int) -> None:
        """Stop a job and delete its partial files (files already verified stay)."""
        job = self.job(job_id)
        with self._lock:
            if job.state is JobState.RUNNING:
                job.control.cancel()
                return
            if job.state in (JobState.DONE, JobState.CANCELLED):
                return
            job.state = JobState.CANCELLED
        with contextlib.suppress(OSError):
            discard_partials(job.request, self.models_dir)
        self._announce(job)

    def remove(self, job_id: int) -> None:
        """Forget a job that is no longer running (clears its row)."""
        job = self.job(job_id)
        if job.state is JobState.RUNNING:
            return
        with self._lock:
            self._jobs.remove(job)
        self._announce(job)

    def wait(self, job_id: int, timeout: float | None = None) -> JobState:
        thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)
        return self.job(job_id).state

    def wait_all(self, timeout: float | None = None) -> None:
        for thread in list(self._threads.values()):
            thread.join(timeout)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Pause every running job and wait for the workers (their partial files stay for next time)."""
        with self._lock:
            self._closed = True
            running = [j for j in self._jobs if j.state is JobState.RUNNING]
        for job in running:
            job.control.pause()
        for job in running:
            thread = self._threads.get(job.id)
            if thread is not None:
                thread.join(timeout)
        self._save()

    # -- running -----------------------------------------------------------
    def _schedule(self) -> None:
        with self._lock:
            if self._closed:
                return
            running = sum(1 for j in self._jobs if j.state is JobState.RUNNING)
            starting = []
            for job in self._jobs:
                if running >= self.max_active:
                    break
                if job.state is JobState.QUEUED:
                    job.state = JobState.RUNNING
                    running += 1
                    starting.append(job)
        for job in starting:
            thread = threading.Thread(target=self._run, args=(job,), name=f"download-{job.id}", daemon=True)
            self._threads[job.id] = thread
            self._announce(job)
            thread.start()

    def _run(self, job: DownloadJob) -> None:
        job.meter.reset()
        job.done_bytes, job.phase = 0, "starting"

        def on_bytes(n: int) -> None:
            job.done_bytes += n

        def on_phase(text: str) -> None:
            job.phase = text

        try:
            if job.request.source in self.fetchers:
                job.phase = f"fetching from {job.request.source}"
                path = self.fetchers[job.request.source](job.request, self.models_dir)
                job.done_bytes = job.total_bytes = path.stat().st_size
                job.paths = [path]
            elif job.request.source not in ("hub", ""):
                raise HearthError(f"cannot download from {job.request.source!r} here; "
                                  "add the model from the catalogue in Hearth's window or with `hearth download`")
            elif job.request.import_from:
                job.total_bytes = os.path.getsize(job.request.import_from)
                source = Path(job.request.import_from)
                job.paths = [importer.import_gguf(source, self.models_dir, job.control, on_bytes)]
            else:
                on_phase("listing files")
                resolved: DownloadPlan = plan(job.request, self.models_dir)
                job.total_bytes = resolved.total_bytes
                job.meter.reset()
                job.paths = execute(resolved, job.control, on_bytes, on_phase)
            job.state, job.phase = JobState.DONE, "verified"
        except DownloadStopped as stop:
            job.state = JobState.CANCELLED if stop.reason == "cancelled" else JobState.PAUSED
            if job.state is JobState.CANCELLED:
                with contextlib.suppress(OSError):
                    discard_partials(job.request, self.models_dir)
        except HearthError as exc:
            job.state, job.error = JobState.FAILED, str(exc)
        except Exception as exc:  # a bug, but the row must say so rather than spin forever
            job.state, job.error = JobState.FAILED, f"unexpected error: {type(exc).__name__}: {exc}"
        self._announce(job)
        self._schedule()

    # -- persistence -------------------------------------------------------
    def _save(self) -> None:
        if self._store is None:
            return
        with self._lock:
            pending = [
                {"request": j.request.to_json(), "done_bytes": j.done_bytes, "total_bytes": j.total_bytes}
                for j in self._jobs if j.state not in (JobState.DONE, JobState.CANCELLED)
            ]
        with contextlib.suppress(OSError):
            self._store.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._store.with_name(self._store.name + ".tmp")
            tmp.write_text(json.dumps({"version": 1, "jobs": pending}, indent=1), encoding="utf-8")
            os.replace(tmp, self._store)

    def restore(self) -> list[DownloadJob]:
        """Bring back the unfinished downloads of the last session, paused."""
        if self._store is None:
            return []
        try:
            data = json.loads(self._store.read_text(encoding="utf-8"))
            entries = [(DownloadRequest.from_json(e["request"]), e) for e in data.get("jobs", [])]
        except (OSError, ValueError, KeyError, TypeError):
            return []
        restored = []
        with self._lock:
            for request, entry in entries:
                job = DownloadJob(next(self._ids), request, state=JobState.PAUSED,
                                  done_bytes=int(entry.get("done_bytes", 0)),
                                  total_bytes=int(entry.get("total_bytes", 0)))
                job.phase = "paused: resume to continue where it stopped"
                self._jobs.append(job)
                restored.append(job)
        for job in restored:
            self._announce(job)
        return restored
