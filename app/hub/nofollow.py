"""Opening Hearth's partial, state and manifest files without ever following a link, on every OS.

Where the OS has ``O_NOFOLLOW`` the kernel refuses a link as the last part of the path; elsewhere
(Windows) the path is checked with ``lstat`` first (links and junctions refused) and the opened
file must be the one that was checked. A link is never written through: :class:`LinkRefused` says
which path to remove.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

from app.hub.errors import HubError

O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_REPARSE_POINT = getattr(stat, "FILE_ATTRIBUTE_REPARSE_POINT", 0x400)
MAX_STATE_BYTES = 1 << 20  # a state or manifest file larger than this is damage, not data


class LinkRefused(HubError):
    """One of Hearth's own files is a link (or not a plain file); Hearth will not write through it."""


def kind(path: Path) -> str:
    """``missing``, ``file``, ``dir``, ``link`` or ``other`` (FIFO, device, socket), links not followed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    except NotADirectoryError:
        return "missing"
    if stat.S_ISLNK(st.st_mode) or getattr(st, "st_file_attributes", 0) & _REPARSE_POINT:
        return "link"
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    return "other"


def refused(path: Path) -> LinkRefused:
    return LinkRefused(
        f"refusing to follow the link {path}: Hearth never writes through links in a download folder; "
        "remove it and try again"
    )


def open_fd(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses a link (and anything but a plain file) at ``path``."""
    # O_NONBLOCK: a FIFO planted at the path fails or opens at once instead of blocking (no effect on files)
    flags |= getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    if O_NOFOLLOW:
        try:
            fd = os.open(path, flags | O_NOFOLLOW, mode)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK) or kind(path) == "link":
                raise refused(path) from None
            if exc.errno == errno.ENXIO:
                raise LinkRefused(f"refusing to use {path}: it is not a plain file; remove it and try again") from None
            raise
    else:  # Windows: check, open, then make sure the opened file is the one checked
        before = kind(path)
        if before == "link":
            raise refused(path)
        fd = os.open(path, flags, mode)
        after = os.fstat(fd)
        if before == "file" and (after.st_ino, after.st_dev) != (os.lstat(path).st_ino, os.lstat(path).st_dev):
            os.close(fd)
            raise refused(path)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LinkRefused(f"refusing to use {path}: it is not a plain file; remove it and try again")
    return fd


def read_bytes(path: Path, limit: int = MAX_STATE_BYTES) -> bytes | None:
    """The file's bytes (None when missing); a link is refused, more than ``limit`` bytes is an error."""
    if kind(path) == "missing":
        return None
    fd = open_fd(path, os.O_RDONLY)
    try:
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ValueError(f"{path.name} is larger than {limit:,} bytes")
    return data


_counter = iter(range(1 << 62))
_counter_lock = threading.Lock()


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to a fresh temporary file beside ``path`` (never a link) and rename it over ``path``."""
    with _counter_lock:
        number = next(_counter)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{number}.tmp")
    fd = open_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(fd, data):]
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
