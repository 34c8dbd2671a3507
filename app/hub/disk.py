"""Free space checks and the one place that writes downloaded bytes (where a full disk shows up)."""

from __future__ import annotations

import errno
import os
import shutil
import threading
from pathlib import Path

from app.hub.errors import NotEnoughSpace
from app.units import human_size

# Room kept free beyond the download itself, so the system does not run dry.
MARGIN_BYTES = 64 * 1024 * 1024


_fake_lock = threading.Lock()
_fake_used = 0


def _fake_free() -> int | None:
    """``HEARTH_FAKE_FREE_BYTES``: a pretend disk of that much free space, used up by :func:`write_all`.

    Tests use it to stand for a nearly full disk, at the lowest layer, in-process or in a subprocess.
    """
    fake = os.environ.get("HEARTH_FAKE_FREE_BYTES")
    return None if not fake else max(0, int(fake) - _fake_used)


def free_bytes(folder: Path) -> int:
    """Free bytes on the filesystem holding ``folder`` (its nearest existing parent)."""
    fake = _fake_free()
    if fake is not None:
        return fake
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def ensure_space(folder: Path, needed: int, what: str) -> None:
    """Raise NotEnoughSpace unless ``needed`` bytes (plus a margin) fit in ``folder``."""
    if needed <= 0:
        return
    free = free_bytes(folder)
    margin = 0 if _fake_free() is not None else MARGIN_BYTES
    if free < needed + margin:
        raise NotEnoughSpace(
            f"not enough disk space for {what}: it needs {human_size(needed)} more, "
            f"but only {human_size(free)} is free in {folder}; free some space or choose another folder"
        )


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte or raise (a short write is a full disk, never silently dropped bytes)."""
    global _fake_used
    view = memoryview(data)
    fake = _fake_free()
    if fake is not None:
        with _fake_lock:
            if view.nbytes > fake:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            _fake_used += view.nbytes
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def reset_fake_disk() -> None:
    """Forget the bytes written against ``HEARTH_FAKE_FREE_BYTES`` (between tests)."""
    global _fake_used
    with _fake_lock:
        _fake_used = 0
