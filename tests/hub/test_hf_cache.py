"""Files already in the Hugging Face cache are hard-linked (or copied) instead of downloaded again."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.hub import hf_cache, manifest
from app.hub.plan import DownloadRequest, execute, plan
from app.hub.transfer import Control
from app.paths import variant_dir
from tests.hub.conftest import GGUF_REPO, gguf_payload
from tests.hub.hub_server import HubServer

NAME = "tiny.Q8_0.gguf"
DATA = gguf_payload(500_000, 2)
README = b"# Tiny GGUF\n"
ROOT = Path(__file__).resolve().parents[2]


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def _fill_cache(cache: Path, commit: str, files: dict[str, tuple[bytes, str]]) -> dict[str, Path]:
    """Lay files out as `hf download` does: blobs/<id> plus snapshots/<commit>/<name> symlinks."""
    repo = cache / ("models--" + GGUF_REPO.replace("/", "--"))
    blobs = {}
    for name, (data, blob_id) in files.items():
        blob = repo / "blobs" / blob_id
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
        blobs[name] = blob
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return blobs


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "hf-home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(folder))
    return folder


def _commit(hub: HubServer) -> str:
    return hub.repos[GGUF_REPO].commits["main"]


def test_cached_files_are_hard_linked_and_no_body_is_served(hub: HubServer, cache: Path, models_dir: Path) -> None:
    blobs = _fill_cache(cache, _commit(hub), {NAME: (DATA, hashlib.sha256(DATA).hexdigest()),
                                              "README.md": (README, _git_oid(README))})
    seen: list[int] = []
    paths = execute(plan(DownloadRequest(GGUF_REPO, files=(NAME, "README.md")), models_dir), Control(), seen.append)
    folder = variant_dir(models_dir, GGUF_REPO, "main")
    assert sorted(p.name for p in paths) == ["README.md", NAME]
    assert sum(hub.bytes_served.values()) == 0  # not one body byte: everything came from the cache
    assert not [r for r in hub.requests if r[0] == "GET" and "/resolve/" in r[1]]
    assert sum(seen) == len(DATA) + len(README)  # progress still reaches 100 %
    assert (folder / NAME).read_bytes() == DATA
    assert os.stat(folder / NAME).st_ino == os.stat(blobs[NAME]).st_ino  # a link: no second copy on disk
    assert manifest.is_verified(folder, NAME, hashlib.sha256(DATA).hexdigest())
    assert manifest.verified_entry(folder, NAME)["source"]["how"] == "linked"  # type: ignore[index]
    assert manifest.is_verified(folder, "README.md")
    (folder / NAME).unlink()  # removing Hearth's copy leaves the cache intact
    assert blobs[NAME].read_bytes() == DATA


def test_a_damaged_cache_file_is_not_used(hub: HubServer, cache: Path, models_dir: Path) -> None:
    wrong = bytearray(DATA)
    wrong[1000] ^= 0xFF
    blobs = _fill_cache(cache, _commit(hub), {NAME: (bytes(wrong), hashlib.sha256(DATA).hexdigest())})
    execute(plan(DownloadRequest(GGUF_REPO, files=(NAME,)), models_dir), Control(), lambda n: None)
    folder = variant_dir(models_dir, GGUF_REPO, "main")
    assert hub.bytes_served[NAME] == len(DATA)  # fetched from the Hub instead
    assert (folder / NAME).read_bytes() == DATA
    assert blobs[NAME].read_bytes() == bytes(wrong)  # the cache itself is never written to
    assert os.stat(folder / NAME).st_ino != os.stat(blobs[NAME]).st_ino


def test_across_file_systems_the_file_is_copied(hub: HubServer, cache: Path, models_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    blobs = _fill_cache(cache, _commit(hub), {NAME: (DATA, hashlib.sha256(DATA).hexdigest())})

    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(hf_cache.os, "link", cross_device)
    execute(plan(DownloadRequest(GGUF_REPO, files=(NAME,)), models_dir), Control(), lambda n: None)
    folder = variant_dir(models_dir, GGUF_REPO, "main")
    assert hub.bytes_served[NAME] == 0
    assert (folder / NAME).read_bytes() == DATA
    assert os.stat(folder / NAME).st_ino != os.stat(blobs[NAME]).st_ino
    assert manifest.verified_entry(folder, NAME)["source"]["how"] == "copied"  # type: ignore[index]


def test_switched_off_the_cache_is_ignored(hub: HubServer, cache: Path, models_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _fill_cache(cache, _commit(hub), {NAME: (DATA, hashlib.sha256(DATA).hexdigest())})
    monkeypatch.setenv("HEARTH_REUSE_HF_CACHE", "0")
    execute(plan(DownloadRequest(GGUF_REPO, files=(NAME,)), models_dir), Control(), lambda n: None)
    assert hub.bytes_served[NAME] == len(DATA)


def test_cache_location_follows_huggingface_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hf_cache.hub_cache_dir() == tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert hf_cache.hub_cache_dir() == tmp_path / "elsewhere"
    assert hf_cache.repo_folder("a/b").name == "models--a--b"


def test_cli_download_reuses_the_cache(hub: HubServer, cache: Path, hearth_home: Path) -> None:
    """`hf download` users: `hearth download` finds the file at once (a real process, the real CLI)."""
    _fill_cache(cache, _commit(hub), {NAME: (DATA, hashlib.sha256(DATA).hexdigest())})
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "app", "download", GGUF_REPO, "--include", NAME],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(NAME)
    assert hub.bytes_served[NAME] == 0
