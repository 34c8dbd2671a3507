"""Hearth's own files under attack: links, folders and FIFOs in their place, corrupt resume state, old manifests.

A generator writes resume states of every wrong type and value; each must be treated as absent
(that file starts again, saying so) and the download must still end in the right sha256.
"""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path
from typing import Any

import pytest

from app.errors import HearthError
from app.hub import manifest, nofollow
from app.hub.errors import DownloadStopped
from app.hub.listing import list_files
from app.hub.plan import DownloadRequest, execute, plan
from app.hub.transfer import Control, download_file, partial_path, state_path
from app.paths import variant_dir
from tests.hub.conftest import GGUF_REPO, gguf_payload
from tests.hub.hostile_hub import tally
from tests.hub.hub_server import Fault, HubServer

NAME, SIZE, SEED = "tiny.Q8_0.gguf", 500_000, 2


def _fetch(folder: Path) -> Path:
    listing = list_files(GGUF_REPO)
    return download_file(GGUF_REPO, listing.commit, listing.file(NAME), folder / NAME, Control(), lambda _n: None)


def _half_done(hub: HubServer, folder: Path) -> None:
    """Leave a real partial file and state behind: the download is paused half-way."""
    listing = list_files(GGUF_REPO)
    hub.inject(Fault("bandwidth", path=NAME, rate=2_000_000))  # small reads, so the pause lands mid-file
    control, seen = Control(), [0]

    def on_bytes(n: int) -> None:
        seen[0] += n
        if seen[0] >= SIZE // 2:
            control.pause()

    with pytest.raises(DownloadStopped):
        download_file(GGUF_REPO, listing.commit, listing.file(NAME), folder / NAME, control, on_bytes)
    assert 0 < partial_path(folder / NAME).stat().st_size < SIZE


@pytest.fixture
def no_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.hub import transfer

    monkeypatch.setattr(transfer.SETTINGS, "retries", 0)


def test_partial_that_is_a_link_is_not_followed(hub: HubServer, tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"precious")
    folder = tmp_path / "models"
    folder.mkdir()
    partial_path(folder / NAME).symlink_to(outside)
    with pytest.raises(HearthError, match=r"refusing to follow the link .*\.partial"):
        _fetch(folder)
    assert outside.read_bytes() == b"precious"


def test_state_file_that_is_a_link_is_not_followed(hub: HubServer, tmp_path: Path, no_retries: None) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    _half_done(hub, folder)
    outside = tmp_path / "outside.json"
    outside.write_text("precious")
    state = state_path(folder / NAME)
    state.unlink()
    state.symlink_to(outside)
    with pytest.raises(HearthError, match=r"refusing to follow the link .*\.partial\.json"):
        _fetch(folder)
    assert outside.read_text() == "precious"


def test_partial_that_is_a_folder_restarts_that_file(hub: HubServer, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "models"
    (partial_path(folder / NAME) / "inside").mkdir(parents=True)
    (partial_path(folder / NAME) / "inside" / "keep.txt").write_text("mine")
    with caplog.at_level(logging.WARNING):
        path = _fetch(folder)
    assert path.read_bytes() == gguf_payload(SIZE, SEED)
    assert "was a folder, moved to tiny.Q8_0.gguf.partial.stale-1; downloading that file again" in caplog.text
    assert (folder / f"{NAME}.partial.stale-1" / "inside" / "keep.txt").read_text() == "mine"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_partial_that_is_a_fifo_does_not_hang(hub: HubServer, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    os.mkfifo(partial_path(folder / NAME))
    assert _fetch(folder).read_bytes() == gguf_payload(SIZE, SEED)


CORRUPT_STATES: list[Any] = [
    {"hash_state": "zz", "offset": 1000}, {"offset": "abc"}, [], None, "text", 5, {"offset": -1},
    {"offset": 1e300}, {"offset": 10**30}, {"offset": True}, {"hash_state": 5, "offset": 10},
    {"hash_state": "ab" * 112, "offset": 250_000},  # 112 bytes that are not a state for this offset
    {"checksum": ["x"]}, {"size": "big"}, {"hash_state": "a" * 5000, "offset": 1},
]
RAW_STATES = [b"\xff\xfe garbage", b"{" * 100_000, b"\0" * 64, b""]


def _random_state(rng: random.Random) -> Any:
    values = [None, True, -1, 0, 2**64, 1.5, float("nan"), "zz", "00" * 56, [], {}, "abc", "\u202e", 250_000]
    state: dict[str, Any] = {"checksum": None, "size": SIZE, "offset": 250_000, "hash_state": None}
    for key in rng.sample(list(state), rng.randint(1, 4)):
        state[key] = rng.choice(values)
    return state


def test_generated_corrupt_resume_states_restart_the_file(hub: HubServer, tmp_path: Path, no_retries: None,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(11)
    cases: list[bytes] = [json.dumps(s).encode() for s in CORRUPT_STATES] + RAW_STATES[:-1]
    must_say = len(cases)  # these are corrupt for sure: the user is told the file starts again
    cases += [json.dumps(_random_state(rng)).encode() for _ in range(15)]
    folder = tmp_path / "models"
    folder.mkdir()
    _half_done(hub, folder)
    part, state = partial_path(folder / NAME), state_path(folder / NAME)
    half = part.read_bytes()
    handled = 0
    for number, raw in enumerate(cases):
        (folder / NAME).unlink(missing_ok=True)
        manifest.forget(folder, NAME)
        part.write_bytes(half)
        state.write_bytes(raw)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            try:
                path = _fetch(folder)
            except HearthError:
                continue
        right = path.read_bytes() == gguf_payload(SIZE, SEED) and manifest.is_verified(folder, NAME)
        said = number >= must_say or ("unusable" in caplog.text and "again from the start" in caplog.text)
        handled += right and said
    tally("corrupt resume states", len(cases), handled)


@pytest.mark.parametrize("state", [{"hash_state": "zz"}, {"offset": "abc"}, [], None],
                         ids=["hash_state-zz", "offset-abc", "list", "null"])
def test_issue_corrupt_states_say_so_and_restart(hub: HubServer, tmp_path: Path, no_retries: None, state: Any,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    _half_done(hub, folder)
    state_path(folder / NAME).write_text(json.dumps(state))
    hub.wait_idle()
    hub.reset_counts()
    with caplog.at_level(logging.WARNING):
        path = _fetch(folder)
    assert path.read_bytes() == gguf_payload(SIZE, SEED)
    assert "the saved resume state is unusable" in caplog.text and "from the start" in caplog.text
    assert hub.bytes_served[NAME] == SIZE  # that file started again


def test_legacy_in_folder_manifest_is_moved_out_and_stays_installed(hub: HubServer, models_dir: Path) -> None:
    request = DownloadRequest(repo=GGUF_REPO, files=(NAME,))
    execute(plan(request, models_dir), Control(), lambda _n: None)
    folder = variant_dir(models_dir, GGUF_REPO, "main")
    # What an older Hearth left: the manifest inside the branch folder, plus a stale entry.
    data = json.loads(manifest.manifest_path(folder).read_text())
    data["files"]["gone.gguf"] = {"size": 1, "mtime_ns": 1, "checksum": "x"}
    (folder / manifest.LEGACY_NAME).write_text(json.dumps(data))
    manifest.manifest_path(folder).unlink()
    hub.reset_counts()
    assert plan(request, models_dir).is_installed()
    execute(plan(request, models_dir), Control(), lambda _n: None)
    assert hub.bytes_served[NAME] == 0
    assert not (folder / manifest.LEGACY_NAME).exists()
    moved = json.loads(manifest.manifest_path(folder).read_text())
    assert list(moved["files"]) == [NAME]


def test_manifest_that_is_a_link_is_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "x"
    folder.mkdir(parents=True)
    (folder / "f.bin").write_bytes(b"abc")
    fake = tmp_path / "fake.json"
    stat = (folder / "f.bin").stat()
    fake.write_text(json.dumps({"files": {"f.bin": {"size": 3, "mtime_ns": stat.st_mtime_ns, "checksum": "c"}}}))
    manifest.manifest_path(folder).parent.mkdir()
    manifest.manifest_path(folder).symlink_to(fake)
    assert not manifest.is_verified(folder, "f.bin")
    manifest.record(folder, "f.bin", checksum="real")  # replaces the link, never writes through it
    assert manifest.is_verified(folder, "f.bin", "real") and "real" not in fake.read_text()


def test_restart_notice_reaches_the_download_phase_line(hub: HubServer, models_dir: Path) -> None:
    """The GUI and CLI show phases: the notice that a file starts again is one of them."""
    request = DownloadRequest(repo=GGUF_REPO, files=(NAME,))
    folder = variant_dir(models_dir, GGUF_REPO, "main")
    folder.mkdir(parents=True)
    partial_path(folder / NAME).write_bytes(gguf_payload(SIZE, SEED)[:1000])
    state_path(folder / NAME).write_text('{"offset": "abc"}')
    phases: list[str] = []
    execute(plan(request, models_dir), Control(), lambda _n: None, phases.append)
    assert any("resume state is unusable" in p and "from the start" in p for p in phases)
    assert (folder / NAME).read_bytes() == gguf_payload(SIZE, SEED)


def test_links_are_refused_where_the_os_has_no_o_nofollow(hub: HubServer, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no O_NOFOLLOW: the check-and-refuse path must hold on its own."""
    monkeypatch.setattr(nofollow, "O_NOFOLLOW", 0)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"precious")
    folder = tmp_path / "models"
    folder.mkdir()
    partial_path(folder / NAME).symlink_to(outside)
    with pytest.raises(HearthError, match="refusing to follow the link"):
        _fetch(folder)
    assert outside.read_bytes() == b"precious"
    with pytest.raises(nofollow.LinkRefused):  # the open itself, not only the check before it
        nofollow.open_fd(partial_path(folder / NAME), os.O_WRONLY)
    with pytest.raises(nofollow.LinkRefused):
        nofollow.read_bytes(partial_path(folder / NAME))
    assert outside.read_bytes() == b"precious"
    partial_path(folder / NAME).unlink()
    assert _fetch(folder).read_bytes() == gguf_payload(SIZE, SEED)


def test_windows_name_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.hub.entries import path_problem

    monkeypatch.setenv("HEARTH_WINDOWS_NAMES", "1")
    for name in ("CON.gguf", "sub/nul", "a:b.gguf", "x.gguf.", "q?.bin", "trailing "):
        assert path_problem(name) is not None, name
    assert path_problem("model.Q4_K_M.gguf") is None
