"""``hearth download`` as a real subprocess: listing, errors on stderr, and resume after ``kill -9``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.catalog import load_catalog
from app.catalog.installed import InstallState, install_state
from app.hub import manifest
from app.hub.transfer import partial_path, state_path
from app.paths import install_root, variant_dir
from tests.hub.conftest import GGUF_REPO, GPTQ_REPO, gguf_payload
from tests.hub.hub_server import Fault, HubServer

BIG = "big-model.Q4_K_M.gguf"
BIG_SIZE = 32 * 1024 * 1024


def hearth(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", *args], cwd=install_root(), env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,  # type: ignore[call-overload]
    )


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = hearth(*args)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_list_prints_branches_and_files_with_sha256(hub: HubServer) -> None:
    result = run("download", "--list", f"{GPTQ_REPO}:gptq-4bit-32g-actorder_True")
    assert result.returncode == 0, result.stderr
    assert "branches: main, gptq-4bit-32g-actorder_True" in result.stdout
    blob = hub.repos[GPTQ_REPO].branches["gptq-4bit-32g-actorder_True"]["model.safetensors"]
    line = next(li for li in result.stdout.splitlines() if li.startswith("model.safetensors"))
    assert "450.00 kB" in line and blob.sha256 in line


def test_bad_branch_is_a_clear_error(hub: HubServer) -> None:
    result = run("download", f"{GPTQ_REPO}:no-such-branch")
    assert result.returncode == 1
    assert "branch 'no-such-branch' was not found in TheBloke/Tiny-GPTQ" in result.stderr
    assert "Traceback" not in result.stderr


def test_hub_unreachable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    result = run("download", GGUF_REPO)
    assert result.returncode == 1
    assert "cannot reach http://127.0.0.1:9" in result.stderr and "Traceback" not in result.stderr


def test_branch_download_to_dest(hub: HubServer, tmp_path: Path) -> None:
    result = run("download", f"https://huggingface.co/{GPTQ_REPO}/tree/gptq-4bit-32g-actorder_True",
                 "--dest", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == [
        "config.json", "model.safetensors", "quantize_config.json", "tokenizer.json"]
    assert "100.0%" in result.stderr and str(tmp_path / "out" / "config.json") in result.stdout


def test_catalogue_variant_id(hub: HubServer, models_dir: Path) -> None:
    _, variant = load_catalog().variant("mistral-7b-openorca:gguf:Q4_K_M")
    hub.add_repo(variant.repo, {"main": {variant.files[0]: gguf_payload(200_000, 9), "README.md": b"hi"}})
    result = run("download", variant.id)
    assert result.returncode == 0, result.stderr
    assert install_state(models_dir, variant) is InstallState.INSTALLED
    assert not (variant_dir(models_dir, variant.repo, "main") / "README.md").exists()


def test_resume_after_kill_9_fetches_almost_nothing_twice(hub: HubServer, models_dir: Path) -> None:
    hub.add_repo("acme/big", {"main": {BIG: gguf_payload(BIG_SIZE, 11)}})
    hub.inject(Fault("bandwidth", path=BIG, rate=8 * 1024 * 1024, times=1))
    part = partial_path(variant_dir(models_dir, "acme/big", "main") / BIG)
    proc = hearth("download", "acme/big", start_new_session=True)
    deadline = time.monotonic() + 60
    while not (part.exists() and part.stat().st_size >= BIG_SIZE * 0.4):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the download never got going"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    hub.wait_idle()
    on_disk = part.stat().st_size
    served_first = hub.bytes_served[BIG]
    assert on_disk < BIG_SIZE and state_path(part.with_name(BIG)).exists()
    hub.reset_counts()
    result = run("download", "acme/big")
    assert result.returncode == 0, result.stderr
    served_again = hub.bytes_served[BIG]
    assert served_again == BIG_SIZE - on_disk  # a Range request from the bytes on disk
    refetched = served_first + served_again - BIG_SIZE
    assert refetched < BIG_SIZE * 0.01, f"{refetched} bytes fetched twice"
    folder = part.parent
    assert manifest.is_verified(folder, BIG)
    assert (folder / BIG).read_bytes() == gguf_payload(BIG_SIZE, 11)
