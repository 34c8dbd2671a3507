"""The record of verified files in a download folder: what is installed is what is listed here.

``.hearth-manifest.json`` beside the files maps each verified file to its size, checksum and
mtime; a file that changed on disk since (size or mtime) no longer counts as verified.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

MANIFEST_NAME = ".hearth-manifest.json"
VERSION = 1
_lock = threading.Lock()


def manifest_path(folder: Path) -> Path:
    return folder / MANIFEST_NAME


def load(folder: Path) -> dict[str, Any]:
    """The manifest of ``folder`` (an empty one when missing or unreadable)."""
    try:
        data = json.loads(manifest_path(folder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"version": VERSION, "files": {}}
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        return {"version": VERSION, "files": {}}
    return data


def _save(folder: Path, data: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{MANIFEST_NAME}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, manifest_path(folder))


def record(folder: Path, name: str, *, checksum: str, source: dict[str, Any] | None = None,
           parts: list[str] | None = None) -> None:
    """Mark ``folder/name`` verified as it is on disk now (``checksum`` is sha256 or git blob id)."""
    stat = (folder / name).stat()
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
    if not isinstance(entry, dict):
        return None
    try:
        stat = (folder / name).stat()
    except OSError:
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
    if not isinstance(branch, dict) or not branch.get("paths"):
        return False
    return all(is_verified(folder, p, data=data) for p in branch["paths"])
