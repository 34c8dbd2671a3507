"""The download-then-convert queue without Qt: stages, cancel mid-requantise, a failed download, a local folder."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.catalog import load_catalog
from app.catalog.installed import InstallState, converted_model, install_state
from app.convert.jobs import ConversionJob, ConversionQueue, ConversionState
from app.convert.sources import ConvertSource, resolve_source, source_for_variant
from app.hub.queue import DownloadQueue, JobState
from app.paths import app_dirs
from tests.convert.tiny_gptq import GptqConfig, build_checkpoint
from tests.hub.conftest import running_hub, use_quick_transfers
from tests.hub.hub_server import HubServer

VARIANT_ID = "mistral-7b-openorca:gptq:gptq-4bit-32g-actorder_True"


@pytest.fixture(autouse=True)
def quick_transfers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from use_quick_transfers(monkeypatch)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tokenizer_model: bytes) -> Iterator[HubServer]:
    _, variant = load_catalog().variant(VARIANT_ID)
    folder = build_checkpoint(tmp_path / "src", tokenizer_model, GptqConfig(4, 32, True, False, "gptq"),
                              hidden=512, ffn=1024, layers=4).folder
    for server in running_hub(monkeypatch):
        server.add_repo(variant.repo, {variant.revision: {p.name: p.read_bytes() for p in folder.iterdir()}})
        yield server


@pytest.fixture
def queues() -> Iterator[ConversionQueue]:
    conversions = ConversionQueue(DownloadQueue(app_dirs().models))
    yield conversions
    conversions.shutdown()
    conversions.downloads.shutdown()


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.slow  # three 4-bit types requantised and measured
def test_stages_are_announced_in_order_and_the_result_is_recorded(hub: HubServer, queues: ConversionQueue) -> None:
    model, variant = load_catalog().variant(VARIANT_ID)
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def listener(job: ConversionJob) -> None:
        with lock:
            seen.append((threading.current_thread().name, job.state.value))

    queues.subscribe(listener)
    job = queues.convert(source_for_variant(model, variant, app_dirs().models))
    assert queues.convert(source_for_variant(model, variant, app_dirs().models)) is job  # not queued twice
    wait_until(lambda: job.state is ConversionState.DONE, timeout=180)  # three types requantised and measured
    states = list(dict.fromkeys(state for _, state in seen))
    # A permuted act-order branch: F16, then llama.cpp requantises to each 4-bit type and each is measured.
    assert states == ["downloading", "waiting", "converting", "requantizing", "converted"]
    assert seen[-1][0].startswith("convert-")  # announced from the worker thread
    assert job.fraction == 1.0 and job.download is not None and job.download.state is JobState.DONE
    conversion = converted_model(app_dirs().models, variant)
    assert conversion is not None and job.result == conversion
    assert conversion.out_type in ("q4_k_m", "q4_k_s", "iq4_nl")
    assert conversion.mode == f"requantised to {conversion.out_type.upper()} (from act-order groups)"
    assert conversion.quality is not None and conversion.choice.startswith(conversion.out_type.upper())
    # What the conversion would do and write was known, and shown, before it started.
    assert job.plan[0].startswith("Mode: requantised to the best measured of Q4_K_M, Q4_K_S, IQ4_NL "
                                  "(from act-order groups)")
    assert job.plan[1].startswith("Output: about ") and "than the branch's" in job.plan[1]


def test_cancel_while_llama_cpp_requantises_leaves_no_file(hub: HubServer, queues: ConversionQueue) -> None:
    model, variant = load_catalog().variant(VARIANT_ID)
    job = queues.convert(source_for_variant(model, variant, app_dirs().models))
    wait_until(lambda: job.state in (ConversionState.REQUANTIZING, ConversionState.DONE))
    assert job.state is ConversionState.REQUANTIZING
    assert 0.79 < job.fraction < 0.81
    queues.cancel(job.id)
    assert queues.wait(job.id, timeout=30) is ConversionState.CANCELLED
    parent = job.source.folder.parent
    assert sorted(p.name for p in parent.iterdir() if p.name != ".hearth") == [job.source.folder.name]
    assert install_state(app_dirs().models, variant) is InstallState.INSTALLED  # the branch itself stays
    assert converted_model(app_dirs().models, variant) is None


def test_a_failed_download_fails_the_conversion(hub: HubServer, queues: ConversionQueue) -> None:
    source = resolve_source("TheBloke/Tiny-GPTQ:no-such-branch", app_dirs().models)
    job = queues.convert(source)
    wait_until(lambda: not job.state.active)
    assert job.state is ConversionState.FAILED
    assert job.error is not None and job.error.startswith("the download failed: ")
    assert "no-such-branch" in job.error


def test_a_local_folder_converts_without_downloading(tmp_path: Path, tokenizer_model: bytes,
                                                     queues: ConversionQueue) -> None:
    folder = build_checkpoint(tmp_path / "mine", tokenizer_model, GptqConfig(8, 128, False, True, "gptq")).folder
    job = queues.convert(ConvertSource(folder), out_type="q8_0")
    assert job.download is None
    assert queues.wait(job.id, timeout=60) is ConversionState.DONE
    assert job.result is not None and job.result.path == tmp_path / "mine.Q8_0.gguf"
    assert (job.result.repo, job.result.branch, job.result.commit) == (None, None, None)
    assert queues.downloads.jobs() == []
