"""The download queue: concurrency limit, pause/resume/cancel of jobs, restore after a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from app.hub.plan import DownloadRequest
from app.hub.queue import DownloadJob, DownloadQueue, JobState
from app.paths import variant_dir
from tests.hub.conftest import GGUF_REPO, GPTQ_REPO, gguf_payload
from tests.hub.hub_server import Fault, HubServer

Q4 = DownloadRequest(GGUF_REPO, includes=("tiny.Q4_K_M.gguf",))
Q8 = DownloadRequest(GGUF_REPO, includes=("tiny.Q8_0.gguf",))
GPTQ = DownloadRequest(GPTQ_REPO, "gptq-4bit-32g-actorder_True")


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_jobs_run_concurrently_up_to_the_limit(hub: HubServer, models_dir: Path) -> None:
    hub.inject(Fault("bandwidth", path="*.gguf", rate=300_000, times=None))
    queue = DownloadQueue(models_dir, max_active=2)
    seen: list[tuple[int, JobState]] = []
    queue.subscribe(lambda job: seen.append((job.id, job.state)))
    jobs = [queue.add(r) for r in (Q4, Q8, GPTQ)]
    wait_until(lambda: jobs[0].state is JobState.RUNNING and jobs[1].state is JobState.RUNNING)
    assert jobs[2].state is JobState.QUEUED
    peak = 0
    while any(j.state.active for j in jobs):
        peak = max(peak, sum(j.state is JobState.RUNNING for j in jobs))
        time.sleep(0.01)
    assert peak == 2
    assert [j.state for j in jobs] == [JobState.DONE] * 3
    assert jobs[1].done_bytes == jobs[1].total_bytes == 500_000
    assert jobs[0].paths == [variant_dir(models_dir, GGUF_REPO, "main") / "tiny.Q4_K_M.gguf"]
    assert (jobs[2].id, JobState.DONE) in seen


def test_pause_resume_and_cancel(hub: HubServer, models_dir: Path) -> None:
    hub.inject(Fault("bandwidth", path="*.gguf", rate=200_000, times=None))
    queue = DownloadQueue(models_dir, max_active=2)
    q8 = queue.add(Q8)
    wait_until(lambda: q8.done_bytes > 100_000)
    queue.pause(q8.id)
    wait_until(lambda: q8.state is JobState.PAUSED)
    paused_at = q8.done_bytes
    hub.faults.clear()
    hub.wait_idle()
    hub.reset_counts()
    queue.resume(q8.id)
    assert queue.wait(q8.id, 10) is JobState.DONE
    assert hub.bytes_served["tiny.Q8_0.gguf"] <= 500_000 - paused_at + 100_000
    folder = variant_dir(models_dir, GGUF_REPO, "main")
    assert (folder / "tiny.Q8_0.gguf").read_bytes() == gguf_payload(500_000, 2)

    hub.inject(Fault("bandwidth", path="*.gguf", rate=100_000, times=None))
    q4 = queue.add(Q4)
    wait_until(lambda: q4.done_bytes > 50_000)
    queue.cancel(q4.id)
    assert queue.wait(q4.id, 5) is JobState.CANCELLED
    assert not any(p.name.startswith("tiny.Q4_K_M") for p in folder.iterdir())


def test_failure_is_reported_and_retry_resumes(hub: HubServer, models_dir: Path) -> None:
    hub.inject(Fault("status", path="tiny.Q4_K_M.gguf", status=401, error_code="GatedRepo", times=1, method=None))
    queue = DownloadQueue(models_dir)
    job = queue.add(Q4)
    assert queue.wait(job.id, 10) is JobState.FAILED
    assert job.error is not None and "gated" in job.error and "HF_TOKEN" in job.error
    queue.resume(job.id)
    assert queue.wait(job.id, 10) is JobState.DONE


def test_shutdown_pauses_and_restore_brings_jobs_back(hub: HubServer, models_dir: Path, tmp_path: Path) -> None:
    hub.inject(Fault("bandwidth", path="*.gguf", rate=100_000, times=None))
    store = tmp_path / "downloads.json"
    queue = DownloadQueue(models_dir, store=store)
    job = queue.add(Q8)
    wait_until(lambda: job.done_bytes > 50_000)
    started = time.monotonic()
    queue.shutdown()
    assert time.monotonic() - started < 3
    assert job.state is JobState.PAUSED
    later = DownloadQueue(models_dir, store=store)
    [restored] = later.restore()
    assert restored.state is JobState.PAUSED and restored.request == Q8 and restored.done_bytes > 0
    hub.faults.clear()
    later.resume(restored.id)
    assert later.wait(restored.id, 10) is JobState.DONE


def test_the_same_request_is_not_queued_twice(hub: HubServer, models_dir: Path) -> None:
    hub.inject(Fault("bandwidth", path="*.gguf", rate=100_000, times=None))
    queue = DownloadQueue(models_dir)
    first = queue.add(Q8)
    assert queue.add(Q8) is first
    queue.cancel(first.id)
    queue.wait_all(5)


def test_listeners_hear_from_worker_threads(hub: HubServer, models_dir: Path) -> None:
    queue = DownloadQueue(models_dir)
    threads: set[str] = set()

    def listener(job: DownloadJob) -> None:
        threads.add(threading.current_thread().name)

    queue.subscribe(listener)
    job = queue.add(Q4)
    queue.wait(job.id, 10)
    assert any(name.startswith("download-") for name in threads)
