"""Download-then-convert jobs: each branch goes through the download queue, then converts on a worker thread.

Listeners passed to :meth:`ConversionQueue.subscribe` are called from worker threads with the job
whose state changed; progress is not announced, readers poll :attr:`ConversionJob.fraction` at
their own pace (the GUI every 500 ms). Conversions run one at a time (each uses every core).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from enum import Enum

from app.catalog.installed import Conversion
from app.convert.converter import ConvertProgress, plan_branch
from app.convert.errors import ConversionCancelled
from app.convert.sources import ConvertSource, convert_source
from app.convert.summary import plan_lines
from app.errors import HearthError
from app.hub.job_list import JobList
from app.hub.queue import DownloadJob, DownloadQueue, JobState

# Share of the bar the writing passes take; llama.cpp's requantising and measuring take the rest.
_CONVERT_SHARE = 0.8


class ConversionState(Enum):
    DOWNLOADING = "downloading"
    WAITING = "waiting"
    CONVERTING = "converting"
    REQUANTIZING = "requantizing"
    MEASURING = "measuring quality"
    DONE = "converted"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in (ConversionState.DOWNLOADING, ConversionState.WAITING, ConversionState.CONVERTING,
                        ConversionState.REQUANTIZING, ConversionState.MEASURING)


@dataclass(eq=False)
class ConversionJob:
    """One branch to fetch and convert. Fields are written by worker threads and read by anyone."""

    id: int
    source: ConvertSource
    out_type: str | None = None
    state: ConversionState = ConversionState.DOWNLOADING
    download: DownloadJob | None = None
    done_bytes: int = 0
    total_bytes: int = 0
    error: str | None = None
    result: Conversion | None = None
    started: float = 0.0
    mode: str = ""  # what the plan says before converting: "exact GPTQ weights" or "requantised to ..."
    stage_label: str = ""  # the type being requantised to or measured
    write_stage: str = "convert"  # "convert" (the output or the F16 model) or "reference" (F16 after exact)
    plan: list[str] = field(default_factory=list)  # what the conversion does and its sizes, in words
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def title(self) -> str:
        return self.source.title or self.source.folder.name

    @property
    def fraction(self) -> float:
        """0..1 over the whole job: the download's own bar, then the conversion's (writing, then the
        reference and llama.cpp steps, which take a fixed share)."""
        if self.state is ConversionState.DOWNLOADING:
            return self.download.fraction if self.download is not None else 0.0
        if self.state is ConversionState.DONE:
            return 1.0
        converted = self.done_bytes / self.total_bytes if self.total_bytes else 0.0
        if self.state in (ConversionState.REQUANTIZING, ConversionState.MEASURING):
            return _CONVERT_SHARE
        share = _CONVERT_SHARE / 2 if self.mode.startswith("exact") else _CONVERT_SHARE
        return (share if self.write_stage == "reference" else 0.0) + converted * share

    @property
    def rate(self) -> float:
        """Bytes of safetensors read per second since the conversion started."""
        elapsed = time.monotonic() - self.started if self.started else 0.0
        return self.done_bytes / elapsed if elapsed > 0 else 0.0


class ConversionQueue(JobList[ConversionJob]):
    """Fetch each branch through ``downloads`` (sharing its rows, resume and verification), then convert."""

    def __init__(self, downloads: DownloadQueue) -> None:
        super().__init__()
        self.downloads = downloads
        self._one_at_a_time = threading.Lock()
        self._threads: dict[int, threading.Thread] = {}
        self._closed = False
        downloads.subscribe(self._download_changed)

    # -- commands ----------------------------------------------------------
    def convert(self, source: ConvertSource, out_type: str | None = None) -> ConversionJob:
        """Queue ``source``'s download (if any) and its conversion; the same source already active is returned."""
        with self._lock:
            for existing in self._jobs:
                if existing.source == source and existing.state.active:
                    return existing
            job = ConversionJob(next(self._ids), source, out_type)
            self._jobs.append(job)
            if source.request is None:
                job.state = ConversionState.WAITING
            else:
                job.download = self.downloads.add(source.request)
        self._announce(job)
        if job.download is None:
            self._start(job)
        else:
            self._download_changed(job.download)
        return job

    def cancel(self, job_id: int) -> None:
        """Stop a job: cancel its download, or stop the conversion (no partial file is left)."""
        job = self.job(job_id)
        with self._lock:
            if not job.state.active:
                return
            job.cancel_event.set()
            if job.state is not ConversionState.DOWNLOADING:
                return  # the worker notices and announces
            job.state = ConversionState.CANCELLED
        if job.download is not None and (job.download.state.active or job.download.state is JobState.PAUSED):
            self.downloads.cancel(job.download.id)
        self._announce(job)

    def retry(self, job_id: int) -> ConversionJob:
        """Start a failed or cancelled job again (verified files are not fetched twice)."""
        job = self.job(job_id)
        self.remove(job_id)
        return self.convert(job.source, job.out_type)

    def remove(self, job_id: int) -> None:
        """Forget a job that is no longer active (clears its row)."""
        job = self.job(job_id)
        with self._lock:
            if job.state.active:
                return
            self._jobs.remove(job)
        self._announce(job)

    def wait(self, job_id: int, timeout: float | None = None) -> ConversionState:
        """Wait for the job's conversion thread (not its download) to end."""
        thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)
        return self.job(job_id).state

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop running conversions (their partial files are removed) and wait for the workers."""
        with self._lock:
            self._closed = True
            running = [j for j in self._jobs if j.state.active]
        for job in running:
            job.cancel_event.set()
        for thread in list(self._threads.values()):
            thread.join(timeout)
        self.downloads.unsubscribe(self._download_changed)

    # -- running -----------------------------------------------------------
    def _download_changed(self, download: DownloadJob) -> None:
        with self._lock:
            waiting = [j for j in self._jobs if j.download is download and j.state is ConversionState.DOWNLOADING]
            for job in waiting:
                if download.state is JobState.FAILED:
                    job.state, job.error = ConversionState.FAILED, f"the download failed: {download.error}"
                elif download.state is JobState.CANCELLED:
                    job.state = ConversionState.CANCELLED
        for job in waiting:
            if download.state is JobState.DONE:
                self._start(job)
            elif not job.state.active:
                self._announce(job)

    def _start(self, job: ConversionJob) -> None:
        with self._lock:
            if self._closed or job.state not in (ConversionState.DOWNLOADING, ConversionState.WAITING):
                return
            job.state = ConversionState.WAITING
            thread = threading.Thread(target=self._run, args=(job,), name=f"convert-{job.id}", daemon=True)
            self._threads[job.id] = thread
        self._announce(job)
        thread.start()

    def _run(self, job: ConversionJob) -> None:
        def progress(update: ConvertProgress) -> None:
            stages = {"requantize": ConversionState.REQUANTIZING, "quality": ConversionState.MEASURING}
            if update.stage in stages:
                job.stage_label = update.tensor
                if job.state is not stages[update.stage] and update.done < update.total:
                    job.state = stages[update.stage]
                    self._announce(job)
                return
            if job.state is not ConversionState.CONVERTING:
                job.state = ConversionState.CONVERTING
                self._announce(job)
            job.write_stage, job.done_bytes, job.total_bytes = update.stage, update.done, update.total

        with self._one_at_a_time:
            try:
                if job.cancel_event.is_set():
                    raise ConversionCancelled()
                plan = plan_branch(job.source.folder, job.out_type)
                job.out_type, job.mode, job.plan = plan.out_type, plan.mode, plan_lines(plan)
                job.state, job.started = ConversionState.CONVERTING, time.monotonic()
                self._announce(job)
                job.result = convert_source(job.source, out_type=job.out_type, progress=progress,
                                            cancel=job.cancel_event.is_set)
                job.out_type = job.result.out_type
                job.state = ConversionState.DONE
            except ConversionCancelled:
                job.state = ConversionState.CANCELLED
            except HearthError as exc:
                job.state, job.error = ConversionState.FAILED, str(exc)
            except Exception as exc:  # a bug, but the row must say so rather than spin forever
                job.state, job.error = ConversionState.FAILED, f"unexpected error: {type(exc).__name__}: {exc}"
        self._announce(job)
