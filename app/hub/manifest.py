"""The record of verified files in a download folder: what is installed is what is listed here.

The manifest maps each verified file (by its path under the folder) to its size, checksum and
mtime; a file that changed on disk since (size or mtime) no longer counts as verified. It lives
outside the folder, in ``.hearth/<folder name>.manifest.json`` beside it, so no downloaded file
can ever replace it (Hub names starting with ``.hearth`` are refused too, see
:mod:`app.hub.entries`). A ``.hearth-manifest.json`` left inside the folder by an older Hearth is
moved out on first use, keeping only the entries whose files are still as verified.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from app.hub import nofollow
from app.hub.errors import HubError

LEGACY_NAME = ".hearth-manifest.json"  # inside the folder, before manifests moved out of it
MANIFEST_NAME = LEGACY_NAME  # folder scans still skip a legacy one they meet
BOOKKEEPING_DIR = ".hearth"
VERSION = 1
_lock = threading.RLock()
_MAX_BYTES = 64 << 20


def manifest_path(folder: Path) -> Path:
    """Where ``folder``'s manifest lives: beside the folder, never inside it."""
    parent = folder.parent if folder.parent != folder else folder
    return parent / BOOKKEEPING_DIR / f"{folder.name or 'root'}.manifest.json"


def _empty() -> dict[str, Any]:
    return {"version": VERSION, "files": {}}


def _read(path: Path) -> dict[str, Any] | None:
    """A manifest file's content; None when missing, unreadable, a link or not a manifest."""
    try:
        raw = nofollow.read_bytes(path, _MAX_BYTES)
        data = json.loads(raw.decode("utf-8")) if raw is not None else None
    except (OSError, ValueError, HubError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        return None
    if not isinstance(data.get("branches", {}), dict):
        data["branches"] = {}
    return data


def load(folder: Path) -> dict[str, Any]:
    """The manifest of ``folder`` (an empty one when missing or unreadable)."""
    data = _read(manifest_path(folder))
    if data is not None:
        return data
    if nofollow.kind(folder / LEGACY_NAME) == "file":
        with _lock:
            return _migrate(folder)
    return _empty()


def _migrate(folder: Path) -> dict[str, Any]:
    """Move a legacy in-folder manifest out, keeping the entries whose files are still as verified."""
    legacy = folder / LEGACY_NAME
    old = _read(legacy) or _empty()
    data = _empty()
    data["files"] = {name: entry for name, entry in old["files"].items()
                     if isinstance(name, str) and verified_entry(folder, name, old) is not None}
    if old.get("branches"):
        data["branches"] = old["branches"]
    try:
        _save(folder, data)
        legacy.unlink()
    except (OSError, HubError):
        pass  # a read-only folder: the legacy entries still count, read again next time
    return data


def _save(folder: Path, data: dict[str, Any]) -> None:
    path = manifest_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    nofollow.replace_text(path, json.dumps(data, indent=1, sort_keys=True))


def record(folder: Path, name: str, *, checksum: str, source: dict[str, Any] | None = None,
           parts: list[str] | None = None) -> None:
    """Mark ``folder/name`` verified as it is on disk now (``checksum`` is sha256 or git blob id)."""
    stat = os.lstat(folder / name)
    entry: dict[str, Any] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "checksum": checksum}
    if source:
        entry["source"] = source
    if parts:
        entry["parts"] = parts
    with _lock:
        data = load(folder)
        data["version"] = VERSION
        data["files"][name] = entry
        _save(folder, data)


def record_branch(folder: Path, repo: str, revision: str, commit: str, paths: list[str]) -> None:
    """Note that every file of ``repo:revision`` (at ``commit``) is here and verified."""
    with _lock:
        data = load(folder)
        data.setdefault("branches", {})[revision] = {"repo": repo, "commit": commit, "paths": sorted(paths)}
        _save(folder, data)


def forget(folder: Path, name: str) -> None:
    with _lock:
        data = load(folder)
        if data["files"].pop(name, None) is not None:
            _save(folder, data)


def verified_entry(folder: Path, name: str, data: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The manifest entry of ``name`` if the file on disk is still the one that was verified."""
    entry = (data or load(folder))["files"].get(name)
    if not isinstance(entry, dict) or not isinstance(name, str):
        return None
    try:
        stat = os.lstat(folder / name)
    except (OSError, ValueError):
        return None
    if nofollow.kind(folder / name) != "file":
        return None
    if stat.st_size != entry.get("size") or stat.st_mtime_ns != entry.get("mtime_ns"):
        return None
    return entry


def is_verified(folder: Path, name: str, checksum: str | None = None, data: dict[str, Any] | None = None) -> bool:
    entry = verified_entry(folder, name, data)
    return entry is not None and (checksum is None or entry.get("checksum") == checksum)


def branch_complete(folder: Path, revision: str, data: dict[str, Any] | None = None) -> bool:
    """Whether a whole-branch download of ``revision`` finished and all its files are still verified."""
    data = data or load(folder)
    branch = data.get("branches", {}).get(revision)
    if not isinstance(branch, dict) or not isinstance(branch.get("paths"), list) or not branch["paths"]:
        return False
    return all(isinstance(p, str) and is_verified(folder, p, data=data) for p in branch["paths"])
