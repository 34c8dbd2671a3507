"""Shield None/True/False from a PySide6 6.12 refcount bug on Python 3.11 (see protect_singletons)."""

from __future__ import annotations

import ctypes
import sys

import PySide6

_SHIELD = 1 << 40
_done = False


def affected() -> bool:
    """PySide6 6.12 on CPython before 3.12, where None, True and False are not immortal."""
    version = tuple(getattr(PySide6, "__version_info__", (0, 0))[:2])
    return version >= (6, 12) and sys.version_info < (3, 12) and sys.implementation.name == "cpython"


def protect_singletons() -> bool:
    """Give None, True and False a huge reference count, as Python 3.12 makes them immortal.

    PySide6 6.12 returns them without a new reference in places (``Signal.emit()``'s
    True; an invalid QVariant's None): each call drops one reference the caller never
    had, and after a few hundred emits CPython 3.11 aborts with "deallocating True".
    Python 3.12+ never frees these objects, so the build is only wrong before 3.12;
    here we make them never-freed too. Returns whether the shield was applied.
    """
    global _done
    if _done or not affected():
        return _done
    for singleton in (None, True, False):
        ctypes.c_ssize_t.from_address(id(singleton)).value += _SHIELD
    _done = True
    return True
