"""Sizes and durations as people read them, shared by every layer (the CLI, the hub, the window)."""

from __future__ import annotations

_UNITS = ("B", "kB", "MB", "GB", "TB")


def human_size(size: int | None) -> str:
    """Decimal units, as model cards and the Hub print them: ``7.26 GB``."""
    if size is None:
        return "?"
    value = float(size)
    for unit in _UNITS:
        if value < 1000 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
