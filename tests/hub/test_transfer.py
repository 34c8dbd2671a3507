"""One file through the resumable, verified transfer, with faults injected by the loopback Hub."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from app.hub import hashing, manifest, receive, transfer
from app.hub.errors import ChecksumMismatch, DiskFull, DownloadStopped, EntryNotFound, HubServerError, NotEnoughSpace
from app.hub.listing import HubFile, list_files
from app.hub.transfer import Control, download_file, partial_path, state_path
from tests.hub.conftest import GGUF_REPO, gguf_payload
from tests.hub.hub_server import Fault, HubServer

NAME = "tiny.Q8_0.gguf"
SIZE = 500_000


def _file(name: str = NAME) -> tuple[str, HubFile]:
    listing = list_files(GGUF_REPO)
    return listing.commit, listing.file(name)


def _fetch(dest_dir: Path, control: Control | None = None, name: str = NAME) -> tuple[Path, list[int]]:
    commit, f = _file(name)
    seen: list[int] = []
    path = download_file(GGUF_REPO, commit, f, dest_dir / f.path, control or Control(), seen.append)
    return path, seen


def test_downloads_verifies_and_records(hub: HubServer, tmp_path: Path) -> None:
    path, seen = _fetch(tmp_path)
    assert path.read_bytes() == gguf_payload(SIZE, 2)
    assert sum(seen) == SIZE
    assert manifest.is_verified(tmp_path, NAME)
    assert not partial_path(path).exists() and not state_path(path).exists()
    hub.reset_counts()
    _fetch(tmp_path)  # already there: nothing fetched again
    assert hub.bytes_served[NAME] == 0


def test_dropped_connection_resumes_with_range(hub: HubServer, tmp_path: Path) -> None:
    hub.inject(Fault("drop", path=NAME, after=200_000))
    path, _ = _fetch(tmp_path)
    assert path.read_bytes() == gguf_payload(SIZE, 2)
    assert hub.bytes_served[NAME] == SIZE  # not one byte twice
    ranges = [r for m, p, r in hub.requests if m == "GET" and p.endswith(NAME)]
    assert ranges == [None, "bytes=200000-"]


def test_stalled_connection_times_out_and_resumes(hub: HubServer, tmp_path: Path) -> None:
    hub.inject(Fault("stall", path=NAME, after=100_000, seconds=20))
    started = time.monotonic()
    path, _ = _fetch(tmp_path)
    assert time.monotonic() - started < 10
    assert path.read_bytes() == gguf_payload(SIZE, 2)
    assert hub.bytes_served[NAME] == SIZE


def test_corrupt_bytes_are_removed_and_reported(hub: HubServer, tmp_path: Path) -> None:
    # Twice: after a mismatch on the socket fast path the file is fetched once more through httpx2.
    hub.inject(Fault("corrupt", path=NAME, after=123_456, times=2))
    with pytest.raises(ChecksumMismatch, match=r"corrupted.*bad bytes were deleted"):
        _fetch(tmp_path)
    assert not (tmp_path / NAME).exists() and not partial_path(tmp_path / NAME).exists()
    assert not manifest.is_verified(tmp_path, NAME)
    path, _ = _fetch(tmp_path)  # the fault was one-off: a new try gets the right file
    assert manifest.is_verified(tmp_path, NAME) and path.stat().st_size == SIZE


def test_corrupt_small_git_file_is_caught_too(hub: HubServer, tmp_path: Path) -> None:
    hub.inject(Fault("corrupt", path="README.md", after=3))
    with pytest.raises(ChecksumMismatch, match=r"git checksum"):
        _fetch(tmp_path, name="README.md")


def test_server_error_retried_then_reported(hub: HubServer, tmp_path: Path) -> None:
    hub.inject(Fault("status", path=NAME, status=503, times=1, method=None))
    path, _ = _fetch(tmp_path)
    assert path.exists()
    hub.inject(Fault("status", path="tiny.Q4_K_M.gguf", status=500, times=None, method=None))
    with pytest.raises(HubServerError, match=r"server error.*HTTP 500"):
        _fetch(tmp_path, name="tiny.Q4_K_M.gguf")


def test_file_gone_is_entry_not_found(hub: HubServer, tmp_path: Path) -> None:
    commit, _ = _file()
    gone = HubFile("nope.gguf", 10, "0" * 40, "0" * 64)
    with pytest.raises(EntryNotFound, match=r"nope.gguf"):
        download_file(GGUF_REPO, commit, gone, tmp_path / "nope.gguf", Control(), lambda n: None)


def _slow(hub: HubServer, rate: float = 200_000) -> None:
    hub.inject(Fault("bandwidth", path=NAME, rate=rate, times=None))


def _run_in_thread(tmp_path: Path, control: Control) -> tuple[threading.Thread, dict[str, BaseException]]:
    outcome: dict[str, BaseException] = {}

    def work() -> None:
        try:
            _fetch(tmp_path, control)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=work)
    thread.start()
    return thread, outcome


def _wait_for_bytes(path: Path, at_least: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size >= at_least:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {at_least} bytes")


def test_pause_keeps_bytes_and_resume_fetches_only_the_rest(hub: HubServer, tmp_path: Path) -> None:
    _slow(hub)
    control = Control()
    thread, outcome = _run_in_thread(tmp_path, control)
    _wait_for_bytes(partial_path(tmp_path / NAME), 150_000)
    control.pause()
    thread.join(5)
    assert isinstance(outcome["error"], DownloadStopped) and outcome["error"].reason == "paused"
    kept = partial_path(tmp_path / NAME).stat().st_size
    state = json.loads(state_path(tmp_path / NAME).read_text())
    assert state["offset"] == kept
    hub.faults.clear()
    hub.wait_idle()
    served_before = hub.bytes_served[NAME]
    path, seen = _fetch(tmp_path)
    assert seen[0] == kept
    assert hub.bytes_served[NAME] - served_before == SIZE - kept
    assert path.read_bytes() == gguf_payload(SIZE, 2)


def test_cancel_removes_the_partial_file(hub: HubServer, tmp_path: Path) -> None:
    _slow(hub, rate=100_000)
    control = Control()
    thread, outcome = _run_in_thread(tmp_path, control)
    _wait_for_bytes(partial_path(tmp_path / NAME), 50_000)
    started = time.monotonic()
    control.cancel()
    thread.join(5)
    assert time.monotonic() - started < 2
    assert isinstance(outcome["error"], DownloadStopped) and outcome["error"].reason == "cancelled"
    assert list(tmp_path.iterdir()) == []


def test_cancel_wakes_a_stalled_read(hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer.SETTINGS, "read_timeout", 30.0)
    hub.inject(Fault("stall", path=NAME, after=10_000, seconds=30))
    control = Control()
    thread, outcome = _run_in_thread(tmp_path, control)
    _wait_for_bytes(partial_path(tmp_path / NAME), 10_000)
    time.sleep(0.2)
    control.cancel()
    thread.join(3)
    assert not thread.is_alive()
    assert isinstance(outcome["error"], DownloadStopped)


def test_resume_restores_the_saved_hash_state(hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a stop, the hash is restored from its saved state, not recomputed over the partial file."""
    if not hashing.resumable_sha256_available():
        pytest.skip("no libcrypto here: the hash is rebuilt from disk instead")
    _slow(hub)
    control = Control()
    thread, _ = _run_in_thread(tmp_path, control)
    _wait_for_bytes(partial_path(tmp_path / NAME), 150_000)
    control.pause()
    thread.join(5)
    hub.faults.clear()
    fed: list[int] = []
    real_feed = transfer.feed_from_disk

    def counting(digest: hashing.RunningHash, path: Path, start: int, end: int, chunk: int = 8 << 20) -> None:
        fed.append(end - start)
        real_feed(digest, path, start, end)

    monkeypatch.setattr(transfer, "feed_from_disk", counting)
    path, _ = _fetch(tmp_path)
    assert sum(fed) == 0
    assert manifest.is_verified(tmp_path, NAME) and path.read_bytes() == gguf_payload(SIZE, 2)


def test_no_room_before_starting(hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_FAKE_FREE_BYTES", "100000")
    with pytest.raises(NotEnoughSpace, match=r"not enough disk space"):
        _fetch(tmp_path)
    assert hub.bytes_served[NAME] == 0


def test_disk_full_midway_is_an_error_never_a_finished_file(
        hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pretend disk has room at the start, then fills up (another program wrote to it)."""
    from app.hub import disk

    monkeypatch.setenv("HEARTH_FAKE_FREE_BYTES", str(SIZE + 1000))
    real_write = disk.write_all
    calls = {"n": 0}

    def filling(fd: int, data: bytes | memoryview) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            monkeypatch.setenv("HEARTH_FAKE_FREE_BYTES", "1")
        real_write(fd, data)

    monkeypatch.setattr(disk, "write_all", filling)
    with pytest.raises(DiskFull, match=r"disk is full"):
        _fetch(tmp_path)
    assert not (tmp_path / NAME).exists()
    assert not manifest.is_verified(tmp_path, NAME)
    monkeypatch.delenv("HEARTH_FAKE_FREE_BYTES")
    disk.reset_fake_disk()
    path, _ = _fetch(tmp_path)
    assert path.read_bytes() == gguf_payload(SIZE, 2)


def test_body_is_read_straight_from_the_socket(hub: HubServer, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path (recv_into large buffers, bypassing h11) is the one plain HTTP/1.1 takes."""
    found: list[object] = []
    real = receive._direct_socket

    def spying(response: object) -> object:
        sock = real(response)  # type: ignore[arg-type]
        found.append(sock)
        return sock

    monkeypatch.setattr(receive, "_direct_socket", spying)
    hub.inject(Fault("drop", path=NAME, after=300_000))
    path, _ = _fetch(tmp_path)
    assert len(found) == 2 and all(sock is not None for sock in found)
    assert path.read_bytes() == gguf_payload(SIZE, 2)
    assert hub.bytes_served[NAME] == SIZE


def test_body_through_httpx_when_the_socket_is_not_usable(hub: HubServer, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(receive, "_direct_socket", lambda response: None)
    hub.inject(Fault("drop", path=NAME, after=250_000))
    path, _ = _fetch(tmp_path)
    assert path.read_bytes() == gguf_payload(SIZE, 2)
    assert hub.bytes_served[NAME] == SIZE


def test_buffers_smaller_than_the_file_keep_every_byte_in_order(
        hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many buffer hand-overs to the hash thread (64 KiB pool buffers for a 500 kB file)."""
    monkeypatch.setattr(transfer, "BUFFER_BYTES", 64 * 1024)
    path, seen = _fetch(tmp_path)
    assert path.read_bytes() == gguf_payload(SIZE, 2) and sum(seen) == SIZE
    assert manifest.is_verified(tmp_path, NAME)
