"""Limits on how long and how slowly the Hub may answer, overridable from the environment (tests, slow links).

``HEARTH_HUB_DEADLINE``: seconds one listing or one ``HEAD`` may take in all (default 30).
``HEARTH_HUB_MIN_RATE``: bytes per second a body must average over the window (default 1024; 0 turns
the rule off). ``HEARTH_HUB_RATE_WINDOW``: that window in seconds (default 60).
"""

from __future__ import annotations

import math
import os

DEFAULT_MIN_RATE = 1024.0
DEFAULT_RATE_WINDOW = 60.0


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if math.isfinite(value) and value >= 0 else default


def hub_deadline(default: float) -> float:
    """Total seconds for one listing or HEAD (at least a tenth of a second)."""
    return max(_env_seconds("HEARTH_HUB_DEADLINE", default), 0.1)


def min_rate() -> float:
    return _env_seconds("HEARTH_HUB_MIN_RATE", DEFAULT_MIN_RATE)


def rate_window() -> float:
    return max(_env_seconds("HEARTH_HUB_RATE_WINDOW", DEFAULT_RATE_WINDOW), 0.1)
