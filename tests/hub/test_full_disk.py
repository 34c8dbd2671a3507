"""A really full disk: downloads into a 2 MiB tmpfs that another program fills up mid-download.

Mounting needs root (or CAP_SYS_ADMIN); where the mount fails the tests are skipped and say why.
The faked free-space tests in test_transfer.py cover the same paths everywhere.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.hub import disk, manifest
from app.hub.errors import DiskFull, NotEnoughSpace
from app.hub.listing import list_files
from app.hub.transfer import Control, download_file, partial_path, state_path
from tests.hub.conftest import GGUF_REPO, gguf_payload
from tests.hub.hub_server import Fault, HubServer

NAME = "tiny.Q8_0.gguf"
SIZE = 500_000


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 2 MiB tmpfs; the free-space margin (meant for real disks) is set to nothing."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here: a real small filesystem cannot be made")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    monkeypatch.setattr(disk, "MARGIN_BYTES", 0)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(folder: Path) -> Path:
    """Write to ``folder`` until its filesystem is full, like another program would."""
    filler = folder / "filler.bin"
    block = b"\0" * 65536
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, block)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def test_too_big_for_the_filesystem_is_refused_up_front(hub: HubServer, small_disk: Path) -> None:
    listing = list_files(GGUF_REPO)
    (small_disk / "filler.bin").write_bytes(b"\0" * 1_800_000)  # 0.2 MB left of 2 MiB
    with pytest.raises(NotEnoughSpace, match=r"not enough disk space for tiny.Q8_0.gguf"):
        download_file(GGUF_REPO, listing.commit, listing.file(NAME), small_disk / NAME, Control(), lambda n: None)
    assert hub.bytes_served[NAME] == 0


def test_disk_filling_up_midway_is_a_clear_error_and_resumes_later(hub: HubServer, small_disk: Path) -> None:
    listing = list_files(GGUF_REPO)
    hub.inject(Fault("bandwidth", path=NAME, rate=200_000, times=1))
    dest = small_disk / NAME
    outcome: dict[str, BaseException] = {}

    def work() -> None:
        try:
            download_file(GGUF_REPO, listing.commit, listing.file(NAME), dest, Control(), lambda n: None)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=work)
    thread.start()
    deadline = time.monotonic() + 10
    while not (partial_path(dest).exists() and partial_path(dest).stat().st_size >= 100_000):
        assert time.monotonic() < deadline and thread.is_alive(), "the download never got going"
        time.sleep(0.01)
    filler = _fill(small_disk)
    thread.join(15)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), DiskFull), outcome
    assert "disk is full" in str(outcome["error"]) and "free some space and resume" in str(outcome["error"])
    assert not dest.exists() and not manifest.is_verified(small_disk, NAME)
    kept = partial_path(dest).stat().st_size
    assert 100_000 <= kept < SIZE and state_path(dest).exists()

    filler.unlink()  # the user frees some space and resumes
    hub.wait_idle()
    hub.reset_counts()
    download_file(GGUF_REPO, listing.commit, listing.file(NAME), dest, Control(), lambda n: None)
    assert dest.read_bytes() == gguf_payload(SIZE, 2)
    assert manifest.is_verified(small_disk, NAME)
    assert hub.bytes_served[NAME] == SIZE - kept
