"""Servers that lie about ranges or trickle: a server error or a pace failure in one line, never a hang.

Generated lies (a ``Content-Range`` that starts elsewhere, a wrong total, a wrong length) must be
reported as a server error without writing a byte at the wrong offset; trickled bodies and HEAD
replies and a server that stalls after 1,000 bytes on every try must fail within the stated limits.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.hub import transfer
from app.hub.errors import DownloadStopped, HubServerError, HubTimeout
from app.hub.listing import list_files
from app.hub.transfer import Control, download_file, partial_path
from app.paths import install_root
from tests.hub.conftest import gguf_payload, payload
from tests.hub.hostile_hub import HostileHub, Lie, running_hostile_hub, tally
from tests.hub.hub_server import Fault

REPO, NAME, SIZE = "acme/liar", "model.gguf", 300_000
DATA = gguf_payload(SIZE, 5)


@pytest.fixture
def liar(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileHub]:
    for server in running_hostile_hub(monkeypatch):
        server.add_repo(REPO, {"main": {NAME: DATA, "notes.txt": payload(5000, 6)}})
        yield server


@pytest.fixture
def pace(monkeypatch: pytest.MonkeyPatch) -> transfer.TransferSettings:
    """Short pace rules: 10 kB/s over 1 s, HEAD within 0.5 s, reads time out after 0.3 s."""
    settings = transfer.TransferSettings(read_timeout=0.3, connect_timeout=3.0, retries=3, backoff=0.05,
                                         head_deadline=0.5, min_rate=10_000, rate_window=1.0)
    monkeypatch.setattr(transfer, "SETTINGS", settings)
    return settings


def _fetch(folder: Path, control: Control | None = None, on_bytes: object = None) -> Path:
    listing = list_files(REPO)
    return download_file(REPO, listing.commit, listing.file(NAME), folder / NAME, control or Control(),
                         on_bytes or (lambda _n: None))  # type: ignore[arg-type]


def _half_done(hub: HostileHub, folder: Path) -> int:
    hub.inject(Fault("bandwidth", path=NAME, rate=2_000_000))
    control, seen = Control(), [0]

    def on_bytes(n: int) -> None:
        seen[0] += n
        if seen[0] >= SIZE // 2:
            control.pause()

    with pytest.raises(DownloadStopped):
        _fetch(folder, control, on_bytes)
    hub.wait_idle()
    return partial_path(folder / NAME).stat().st_size


@pytest.mark.slow
def test_generated_range_lies_are_server_errors_and_write_nothing(liar: HostileHub, tmp_path: Path) -> None:
    rng = random.Random(206)
    lies = [Lie("range_shift", shift=s) for s in (-100_000, -1000, -1, 1, 7, 1000, 100_000)]
    lies += [Lie("range_shift", shift=rng.randint(-SIZE, SIZE) or 3) for _ in range(6)]
    lies += [Lie("range_total"), Lie("range_length")]
    handled = 0
    for number, lie in enumerate(lies):
        folder = tmp_path / f"case{number}"
        folder.mkdir()
        on_disk = _half_done(liar, folder)
        liar.lies[:] = [lie]
        try:
            _fetch(folder)
        except HubServerError as exc:
            message = str(exc)
            clear = "server error, not your connection" in message and "internet" not in message
            intact = partial_path(folder / NAME).read_bytes() == DATA[:on_disk]
            liar.lies.clear()
            handled += clear and intact and _fetch(folder).read_bytes() == DATA
        liar.lies.clear()
    tally("servers lying about ranges", len(lies), handled)


def test_issue_content_range_elsewhere_is_not_a_connection_problem(liar: HostileHub, tmp_path: Path) -> None:
    on_disk = _half_done(liar, tmp_path)
    liar.lie(Lie("range_shift", shift=4096))
    with pytest.raises(HubServerError, match=rf"bytes {on_disk + 4096}-{SIZE - 1}/{SIZE} when asked for "
                                             rf"bytes {on_disk}-{SIZE - 1}/{SIZE}.*server error, not your connection"):
        _fetch(tmp_path)
    assert partial_path(tmp_path / NAME).read_bytes() == DATA[:on_disk]


def test_trickled_body_fails_the_pace_rule(liar: HostileHub, tmp_path: Path, pace: transfer.TransferSettings) -> None:
    liar.lie(Lie("trickle_body", interval=0.05))  # 20 bytes/s
    started = time.monotonic()
    with pytest.raises(HubTimeout, match=r"'model\.gguf' arrived too slowly: \d+ bytes in the last 1 s.*10000 bytes/s"):
        _fetch(tmp_path)
    assert time.monotonic() - started < pace.rate_window + 8


def test_trickled_head_reply_is_cut_by_its_deadline(liar: HostileHub, tmp_path: Path,
                                                    pace: transfer.TransferSettings) -> None:
    liar.lie(Lie("trickle_head", interval=0.05))
    started = time.monotonic()
    with pytest.raises(HubTimeout, match="arrived too slowly"):
        _fetch(tmp_path)
    assert time.monotonic() - started < pace.rate_window + pace.head_deadline + 8


def test_stall_after_1000_bytes_every_time_gives_up(liar: HostileHub, tmp_path: Path,
                                                    pace: transfer.TransferSettings) -> None:
    liar.inject(Fault("stall", path=NAME, after=1000, seconds=30, times=None))
    started = time.monotonic()
    with pytest.raises(HubTimeout, match="arrived too slowly"):
        _fetch(tmp_path)
    assert time.monotonic() - started < pace.rate_window + pace.read_timeout + 8
    assert 0 < partial_path(tmp_path / NAME).stat().st_size < SIZE  # what came is kept for a later try


@pytest.mark.slow
def test_pace_rules_come_from_the_environment_for_the_cli(liar: HostileHub, tmp_path: Path) -> None:
    liar.lie(Lie("trickle_body", interval=0.05))
    env = {**os.environ, "HEARTH_HUB_MIN_RATE": "5000", "HEARTH_HUB_RATE_WINDOW": "1", "HEARTH_HUB_DEADLINE": "2"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "app", "download", f"{REPO}", "--include", NAME,
                             "--dest", str(tmp_path / "out")], cwd=install_root(), env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "arrived too slowly" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 20
    liar.lies.clear()
    liar.inject(Fault("stall", path="api/tree", seconds=30, method=None))
    result = subprocess.run([sys.executable, "-m", "app", "download", "--list", REPO], cwd=install_root(), env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "did not answer in 2 s while listing the files" in result.stderr


def test_pace_rule_on_a_clock() -> None:
    """A steady pace passes, a trickle fails once a whole window has passed, and a fast download keeps
    about a hundred samples however many reads it makes."""
    from app.hub.replies import Throughput

    now = [0.0]
    meter = Throughput("m.gguf", min_rate=100, window=10, clock=lambda: now[0])
    for step in range(400):  # 200 bytes/s for 20 s
        now[0] = step * 0.05
        meter.add(10)
        meter.check()
    for step in range(1, 60):  # then 5 bytes/s
        now[0] = 20 + step * 0.2
        meter.add(1)
        if now[0] < 25:
            meter.check()  # the last window still holds the fast part
    with pytest.raises(HubTimeout, match=r"\d+ bytes in the last 10 s, under the minimum of 100 bytes/s"):
        meter.check()
    fast = Throughput("f", min_rate=1, window=60, clock=lambda: now[0])
    for step in range(100_000):
        now[0] = 100 + step * 0.001
        fast.add(65536)
    assert len(fast._samples) <= 102
