"""Listings with hostile names and types: refused with one line, never written outside the folder.

A generator builds listing entries from hostile pieces (dots, slashes, NUL, escape sequences, bidi
marks, reserved names, wrong JSON types) and runs each through the real huggingface_hub client
against the loopback Hub, then through :func:`app.hub.plan.plan` and :func:`execute`. Every case
must end in a downloaded file strictly inside the destination or a one-line HubError, and nothing
may appear outside the destination but Hearth's own ``.hearth`` folder beside it.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.errors import HearthError
from app.hub import manifest
from app.hub.entries import path_problem, shown, sort_out
from app.hub.listing import list_files
from app.hub.plan import DownloadRequest, execute, plan
from app.hub.transfer import Control
from app.paths import install_root, variant_dir
from tests.hub.hostile_hub import HostileHub, running_hostile_hub, tally, tree_entry

REPO = "acme/evil"
GOOD = b"GGUF good bytes"
HOSTILE_NAMES = [
    ".", "", "./", "/", "./.", "..", "../x.gguf", "a/../../x.gguf", "/etc/passwd", "a/./b.gguf", "a//b.gguf",
    "a/", "x\0y.gguf", "x\x1b]0;pwned\x07\x1b[2J.gguf", "line\nbreak.gguf", "tab\there", "del\x7f",
    "c1\x9b31m", "\u202eflipped.gguf", "a\\b.gguf", "..\\..\\x.gguf", ".hearth-manifest.json",
    ".hearth/main.manifest.json", "sub/.hearth-manifest.json", ".HEARTH-x", "model.gguf.partial",
    "model.gguf.partial.json", "model.gguf.partial.json.tmp", "model.gguf.joining", "x.partial.stale-1",
    "a" * 300, "d/" * 600 + "x", "\ud800lonely.gguf",
]
BAD_TYPES: list[dict[str, Any]] = [
    {"path": 5}, {"path": None}, {"path": ["x"]}, {"path": {"a": 1}}, {"size": "5"}, {"size": -5},
    {"size": 5.0}, {"size": True}, {"size": 2**70}, {"size": None}, {"size": [1]}, {"oid": "zz"},
    {"oid": 5}, {"oid": "A" * 40}, {"lfs": {"oid": "12", "size": 1, "pointerSize": 1}},
    {"lfs": {"oid": "0" * 64, "size": 999, "pointerSize": 1}},
    {"lfs": {"oid": "0" * 64, "size": "1", "pointerSize": 1}},
]
MALFORMED: list[dict[str, Any]] = [  # entries huggingface_hub itself cannot parse
    {"lfs": "not an object"}, {"type": "file", "path": "x"}, {"path": "y", "type": None},
]
PIECES = ["", ".", "..", "/", "//", "\\", "\0", "\x1b[2J", "\x07", "\n", "\u202e", "\u200f", ".hearth", ".partial",
          ".joining", "a", "b.gguf", "model", "ü", "😀", " ", "~", "$HOME", "%2e%2e", "CON", "x" * 40]


def _lfs(data: bytes) -> dict[str, Any]:
    return {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}


def random_entries(rng: random.Random) -> list[dict[str, Any]]:
    """One or two hostile entries beside a good file: random names from hostile pieces, random wrong types."""
    name = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 5)))
    entry = tree_entry(name, b"payload")
    if rng.random() < 0.3:
        entry.update(rng.choice(BAD_TYPES))
    entries = [tree_entry("good.gguf", GOOD, lfs=True), entry]
    if rng.random() < 0.2:  # the same name as a folder of another entry
        entries.append(tree_entry(f"{name}/inner.bin", b"inner"))
    return entries


@pytest.fixture
def evil(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileHub]:
    yield from running_hostile_hub(monkeypatch)


def _serve(hub: HostileHub, entries: list[dict[str, Any]]) -> None:
    files = {e["path"]: (GOOD if e["path"] == "good.gguf" else b"payload")
             for e in entries if isinstance(e.get("path"), str) and "\0" not in e["path"]}
    files = {k: v for k, v in files.items() if path_problem(k) is None} or {"good.gguf": GOOD}
    hub.add_repo(REPO, {"main": files})
    hub.raw_trees[(REPO, "main")] = entries


def _snapshot(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _one_line(message: str) -> bool:
    return "\n" not in message and "Traceback" not in message and len(message) < 600 and message.isprintable()


def _run_case(hub: HostileHub, entries: list[dict[str, Any]], sandbox: Path, dest: Path | None = None) -> bool:
    """True when the case ended safely: files only inside the folder, or one clear line."""
    _serve(hub, entries)
    before = _snapshot(sandbox)
    request = DownloadRequest(repo=REPO, dest=str(dest) if dest else None)
    models = sandbox / "models"
    folder = dest or variant_dir(models, REPO, "main")
    try:
        done = execute(plan(request, models), Control(), lambda _n: None)
    except HearthError as exc:
        ok = _one_line(str(exc))
        done = []
    else:
        ok = all(p.is_file() and folder.resolve() in p.resolve().parents for p in done)
    new = _snapshot(sandbox) - before
    allowed = (folder.relative_to(sandbox).as_posix(), (folder.parent / ".hearth").relative_to(sandbox).as_posix())
    outside = [p for p in new if not any(p == a or p.startswith(a + "/") for a in allowed)
               and not any(a.startswith(p + "/") for a in allowed)]
    return ok and not outside and not (folder.exists() and not folder.is_dir())


@pytest.mark.slow
def test_generated_hostile_listings_end_in_the_folder_or_one_line(evil: HostileHub, tmp_path: Path) -> None:
    rng = random.Random(19)
    cases: list[list[dict[str, Any]]] = [[tree_entry("good.gguf", GOOD, lfs=True), tree_entry(n, b"payload")]
                                         for n in HOSTILE_NAMES]
    cases += [[tree_entry("good.gguf", GOOD, lfs=True), tree_entry("bad.bin", b"payload", **t)] for t in BAD_TYPES]
    cases += [[tree_entry("good.gguf", GOOD, lfs=True), {**tree_entry("odd.bin", b"p"), **m}] for m in MALFORMED]
    cases += [random_entries(rng) for _ in range(60)]
    handled = 0
    for number, entries in enumerate(cases):
        sandbox = tmp_path / f"case{number}"
        sandbox.mkdir()
        dest = sandbox / "parent" / "new" if number % 2 else None
        handled += _run_case(evil, entries, sandbox, dest)
    tally("hostile listings through the Hub client, plan and download", len(cases), handled)


def test_sort_out_generated_entries_fast() -> None:
    """Thousands of generated entries straight through the validation layer."""
    rng = random.Random(7)

    class Entry:
        def __init__(self, raw: dict[str, Any]) -> None:
            self.path, self.size, self.blob_id = raw.get("path"), raw.get("size"), raw.get("oid")
            lfs = raw.get("lfs")
            self.lfs = type("Lfs", (), {"sha256": lfs.get("oid"), "size": lfs.get("size")}) \
                if isinstance(lfs, dict) else None

    tried = handled = 0
    for _ in range(3000):
        entries = random_entries(rng)
        accepted, refused = sort_out(Entry(e) for e in entries)
        tried += 1
        paths = [f.path for f in accepted]
        safe = all(path_problem(p) is None and isinstance(f.size, int) and f.size >= 0
                   for p, f in zip(paths, accepted, strict=True))
        no_folder_clash = not any(q.startswith(p + "/") for p in paths for q in paths)
        printable = all(_one_line(r.message("x")) for r in refused)
        handled += safe and no_folder_clash and printable and len(accepted) + len(refused) == len(entries)
    tally("generated listing entries through app.hub.entries", tried, handled)


# -- the issue's cases, by name -------------------------------------------------------------------

def _hearth(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=install_root(), env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.parametrize("name", [".", "", "./"])
def test_dot_or_empty_entry_never_writes_the_destination_as_a_file(evil: HostileHub, tmp_path: Path,
                                                                   models_dir: Path, name: str) -> None:
    _serve(evil, [tree_entry("good.gguf", GOOD, lfs=True), tree_entry(name, b"server bytes")])
    parent = tmp_path / "parent"
    result = _hearth("download", REPO, "--dest", str(parent / "new"))
    assert result.returncode == 1
    assert f"refusing the file {shown(name)}" in result.stderr and "Traceback" not in result.stderr
    assert not (parent / "new").is_file() and not (parent / ".hearth-manifest.json").exists()
    result = _hearth("download", REPO)  # without --dest: the branch folder must not become a file
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert not variant_dir(models_dir, REPO, "main").is_file()


def test_control_characters_and_nul_are_refused_in_one_line(evil: HostileHub) -> None:
    _serve(evil, [tree_entry("a\x1b]0;pwned\x07\x1b[2J.gguf", b"x"), tree_entry("b\0.gguf", b"y")])
    result = _hearth("download", REPO)
    assert result.returncode == 1
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr and "\0" not in result.stderr
    assert "control character" in result.stderr or "NUL" in result.stderr
    assert result.stderr.count("\n") <= 3 and "Traceback" not in result.stderr


def test_repo_file_named_like_the_manifest_cannot_plant_entries(evil: HostileHub, models_dir: Path) -> None:
    planted = b'{"version": 1, "files": {"good.gguf": {"size": 15, "mtime_ns": 1, "checksum": "x"}}}'
    _serve(evil, [tree_entry("good.gguf", GOOD, lfs=True), tree_entry(".hearth-manifest.json", planted)])
    with pytest.raises(HearthError, match=r"refusing the file '\.hearth-manifest\.json'.*reserved"):
        plan(DownloadRequest(repo=REPO), models_dir)
    done = execute(plan(DownloadRequest(repo=REPO, includes=("*.gguf",)), models_dir), Control(), lambda _n: None)
    folder = variant_dir(models_dir, REPO, "main")
    assert done == [folder / "good.gguf"] and manifest.is_verified(folder, "good.gguf")
    assert not (folder / ".hearth-manifest.json").exists()
    assert manifest.manifest_path(folder).parent == folder.parent / ".hearth"  # outside the branch folder


def test_negative_size_with_the_empty_hash_is_not_installed(evil: HostileHub, models_dir: Path) -> None:
    empty_sha = hashlib.sha256(b"").hexdigest()
    entry = tree_entry("model.gguf", b"", size=-5, lfs=True)
    entry["lfs"] = {"oid": empty_sha, "size": -5, "pointerSize": 134}
    _serve(evil, [entry])
    result = _hearth("download", REPO)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "its size is -5, outside 0" in result.stderr
    assert not manifest.load(variant_dir(models_dir, REPO, "main"))["files"]


@pytest.mark.parametrize(("override", "expected"), [
    ({"size": "500"}, "its size is '500', not a whole number"),
    ({"path": 12345}, "its name is not text (a JSON int)"),
])
def test_wrong_types_end_in_one_clear_line(evil: HostileHub, override: dict[str, Any], expected: str) -> None:
    _serve(evil, [tree_entry("model.gguf", b"abc", **override)])
    result = _hearth("download", REPO)
    assert result.returncode == 1
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("hearth: error")]) == 1


def test_file_colliding_with_a_folder_is_refused(evil: HostileHub, models_dir: Path, tmp_path: Path) -> None:
    _serve(evil, [tree_entry("a", b"file"), tree_entry("a/b.gguf", b"inner")])
    listing = list_files(REPO)
    assert [f.path for f in listing.files] == ["a/b.gguf"]
    assert _hearth("download", "--list", REPO).stdout.splitlines()[-1] == (
        "not downloadable: 'a': another listed file uses its name as a folder")
    with pytest.raises(HearthError, match="another listed file uses its name as a folder"):
        plan(DownloadRequest(repo=REPO), models_dir)
    # A folder already on disk where the file would go: refused, the folder untouched.
    _serve(evil, [tree_entry("c.gguf", b"file")])
    dest = tmp_path / "out"
    (dest / "c.gguf").mkdir(parents=True)
    (dest / "c.gguf" / "keep.txt").write_text("mine")
    with pytest.raises(HearthError, match="a folder of that name is in the way"):
        execute(plan(DownloadRequest(repo=REPO, dest=str(dest)), models_dir), Control(), lambda _n: None)
    assert (dest / "c.gguf" / "keep.txt").read_text() == "mine"


def test_link_inside_the_folder_is_not_written_through(evil: HostileHub, tmp_path: Path, models_dir: Path) -> None:
    _serve(evil, [tree_entry("sub/model.gguf", b"bytes")])
    dest, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    dest.mkdir()
    elsewhere.mkdir()
    (dest / "sub").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(HearthError, match="a link inside"):
        execute(plan(DownloadRequest(repo=REPO, dest=str(dest)), models_dir), Control(), lambda _n: None)
    assert list(elsewhere.iterdir()) == []


def test_branch_names_with_escape_codes_are_not_listed(evil: HostileHub) -> None:
    from app.hub.listing import list_branches

    _serve(evil, [tree_entry("good.gguf", GOOD, lfs=True)])
    repo = evil.repos[REPO]
    evil_branch = "x\x1b]0;pwned\x07"
    repo.branches[evil_branch] = repo.branches["main"]
    repo.commits[evil_branch] = "0" * 40
    assert [b.name for b in list_branches(REPO)] == ["main"]
