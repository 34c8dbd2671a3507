"""The one check on file entries the Hub lists: names that stay inside the folder, sizes and checksums typed.

Everything a listing says about a file passes through :func:`check_entry` before Hearth uses it: a
path must be a relative POSIX path of plain names (no empty, ``.`` or ``..`` parts, no NUL, control
or bidi characters, no backslash, not one of Hearth's own bookkeeping names), the size a
non-negative integer, the checksums hex strings of the right length. Entries that fail are kept
aside as :class:`Refused` (with a short, printable excerpt of the name) so that a download which
wants one of them stops with one line, while the rest of the branch stays usable.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.hub.errors import HubError, printable

# Hearth's own names beside downloaded files: a Hub path may not use them (see app.hub.manifest,
# app.hub.transfer): anything starting with ``.hearth``, and ``NAME.partial``, ``NAME.partial.json``,
# ``NAME.joining``, ``NAME.from-hf-cache`` and their temporary or set-aside variants.
RESERVED_PREFIX = ".hearth"
_RESERVED_PART = re.compile(r"\.(partial|joining|from-hf-cache)(\.|$)", re.IGNORECASE)
MAX_PATH_BYTES = 1024
MAX_NAME_BYTES = 255
MAX_SIZE = 1 << 50  # 1 PiB: no model file is bigger; JSON numbers above this are damage or a lie
_HEX = re.compile(r"^[0-9a-f]+$")
_BIDI = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
         "\u200e", "\u200f", "\u061c"}
# Unicode categories Cc (C0, DEL, C1) and Cs (lone surrogates), and the bidi controls above.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff" + "".join(sorted(_BIDI)) + "]")
_WINDOWS_FORBIDDEN = set('<>:"|?*')
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


class EntryRefused(HubError):
    """A file the Hub listed cannot be written safely (its name, size or checksum is unusable)."""


@dataclass(frozen=True)
class HubFile:
    """One file of a branch. LFS files carry the sha256 the Hub computed; others their git blob id."""

    path: str
    size: int
    blob_id: str
    sha256: str | None = None

    @property
    def is_lfs(self) -> bool:
        return self.sha256 is not None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Refused:
    """A listed entry that was not accepted: ``shown`` is a short printable form of its name."""

    shown: str
    reason: str
    path: str | None = None  # the name as listed, when it was a string

    def message(self, where: str) -> str:
        return f"refusing the file {self.shown} listed by {where}: {self.reason}"


def shown(value: object, limit: int = 60) -> str:
    """A short, printable, quoted excerpt of an outside value (no control or escape characters)."""
    return f"'{printable(value if isinstance(value, str) else repr(value), limit)}'"


def path_problem(path: object) -> str | None:
    """Why ``path`` may not be written under a download folder, or None when it is fine."""
    if not isinstance(path, str):
        return f"its name is not text (a JSON {type(path).__name__})"
    if not path:
        return "its name is empty"
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid Unicode"
    if len(encoded) > MAX_PATH_BYTES:
        return f"its name is {len(encoded):,} bytes long (at most {MAX_PATH_BYTES:,})"
    if "\\" in path:
        return "its name contains a backslash"
    if "\0" in path:
        return "its name contains a NUL byte"
    if _CONTROL.search(path):
        return "its name contains a control character"
    if path.startswith("/"):
        return "it is an absolute path"
    for part in path.split("/"):
        problem = _part_problem(part)
        if problem:
            return problem
    return None


def _part_problem(part: str) -> str | None:
    if part in ("", "."):
        return "its name has an empty or '.' part (it would name the folder itself)"
    if part == "..":
        return "it points outside the folder"
    if len(part.encode("utf-8")) > MAX_NAME_BYTES:
        return f"one part of its name is longer than {MAX_NAME_BYTES} bytes"
    lowered = part.lower()
    if lowered.startswith(RESERVED_PREFIX) or _RESERVED_PART.search(lowered):
        return "its name is reserved for Hearth's own bookkeeping files"
    if sys.platform == "win32" or os.environ.get("HEARTH_WINDOWS_NAMES"):
        if _WINDOWS_FORBIDDEN & set(part) or part.endswith((" ", ".")):
            return "its name is not allowed on Windows"
        if lowered.split(".", 1)[0] in _WINDOWS_DEVICES:
            return "its name is a Windows device name"
    return None


def _hex(value: object, lengths: tuple[int, ...], what: str) -> str:
    if not isinstance(value, str) or len(value) not in lengths or not _HEX.match(value):
        raise EntryRefused(f"its {what} is {shown(value, 20)}, not a {' or '.join(map(str, lengths))}-digit hex digest")
    return value


def _size(value: object, what: str = "size") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EntryRefused(f"its {what} is {shown(value, 20)}, not a whole number")
    if not 0 <= value <= MAX_SIZE:
        raise EntryRefused(f"its {what} is {value}, outside 0 to {MAX_SIZE:,} bytes")
    return value


def check_entry(path: object, size: object, blob_id: object, lfs_sha256: object = None,
                lfs_size: object = None, is_lfs: bool = False) -> HubFile:
    """A :class:`HubFile` from what a listing says, or :class:`EntryRefused` with the reason."""
    problem = path_problem(path)
    if problem:
        raise EntryRefused(problem)
    assert isinstance(path, str)
    checked_size = _size(size)
    git = _hex(blob_id, (40, 64), "git id")
    sha256 = None
    if is_lfs:
        sha256 = _hex(lfs_sha256, (64,), "sha256")
        if lfs_size is not None and _size(lfs_size, "LFS size") != checked_size:
            raise EntryRefused(f"its LFS size {lfs_size} differs from its listed size {checked_size}")
    return HubFile(path=path, size=checked_size, blob_id=git, sha256=sha256)


def from_repo_entry(entry: Any) -> HubFile:
    """Check one huggingface_hub ``RepoFile`` (its attributes come straight from the Hub's JSON)."""
    lfs = getattr(entry, "lfs", None)
    if lfs is None:
        return check_entry(getattr(entry, "path", None), getattr(entry, "size", None), getattr(entry, "blob_id", None))
    return check_entry(
        getattr(entry, "path", None), getattr(entry, "size", None), getattr(entry, "blob_id", None),
        getattr(lfs, "sha256", None), getattr(lfs, "size", None), is_lfs=True,
    )


def sort_out(entries: Iterable[Any], folders: Iterable[object] = ()) -> tuple[list[HubFile], list[Refused]]:
    """Accepted files (sorted by path) and refused entries: bad ones, duplicates, and files that are
    also a folder of another file (or a listed folder)."""
    accepted: dict[str, HubFile] = {}
    refused: list[Refused] = []
    for entry in entries:
        raw = getattr(entry, "path", None)
        try:
            file = from_repo_entry(entry)
        except EntryRefused as exc:
            refused.append(Refused(shown(raw), str(exc), raw if isinstance(raw, str) else None))
            continue
        if file.path in accepted:
            refused.append(Refused(shown(file.path), "the listing names it twice", file.path))
            accepted.pop(file.path)
            continue
        accepted[file.path] = file
    dirs = {p for p in folders if isinstance(p, str)}
    for path in accepted:
        parts = path.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    for path in [p for p in accepted if p in dirs]:
        accepted.pop(path)
        refused.append(Refused(shown(path), "another listed file uses its name as a folder", path))
    return sorted(accepted.values(), key=lambda f: f.path), refused


def target_inside(folder: Path, path: str) -> Path:
    """``folder/path``, checked to be a file strictly inside ``folder`` even after links are resolved."""
    problem = path_problem(path)
    if problem:
        raise EntryRefused(f"refusing to write {shown(path)}: {problem}")
    target = folder.joinpath(*path.split("/"))
    base = folder.resolve()
    parent = target.parent.resolve()
    if parent != base and base not in parent.parents:
        raise EntryRefused(
            f"refusing to write {shown(path)}: a link inside {folder} points elsewhere; remove the link and retry"
        )
    if target.is_dir() and not target.is_symlink():
        raise EntryRefused(
            f"refusing to write {shown(path)}: a folder of that name is in the way in {folder}; move it and retry"
        )
    return target
