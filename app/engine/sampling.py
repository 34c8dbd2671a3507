"""Sampling values merged in one order and checked in one place (the window, ``hearth chat``, the server).

Hearth's defaults, then the catalogue's for the model, then the chat's saved values, then this
request's: a value that is not a number in range is reported by name and the value before it
is kept, so a bad entry never silently resets the others.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from app.engine.protocol import SamplingSettings
from app.errors import HearthError

# name -> (whole number?, lowest, highest); None means unbounded on that side.
LIMITS: dict[str, tuple[bool, float | None, float | None]] = {
    "temperature": (False, 0.0, 100.0),
    "top_k": (True, 0, None),
    "top_p": (False, 0.0, 1.0),
    "min_p": (False, 0.0, 1.0),
    "repeat_penalty": (False, 0.0, 100.0),
    "repeat_last_n": (True, -1, None),
    "seed": (True, None, None),
    "max_tokens": (True, 1, None),
}
SAMPLING_KEYS = frozenset(f.name for f in fields(SamplingSettings))


class SamplingError(HearthError):
    """A sampling value that cannot be used; the message names it and says what would do."""


def check_value(name: str, value: Any) -> float | int | bool | None:
    """The value as SamplingSettings holds it, or SamplingError naming what is wrong."""
    if name not in SAMPLING_KEYS:
        raise SamplingError(f"unknown sampling setting {name!r}; known: {', '.join(sorted(SAMPLING_KEYS))}")
    if name == "ignore_eos":
        if not isinstance(value, bool):
            raise SamplingError(f"sampling setting {name} must be true or false, not {value!r}")
        return value
    if name == "seed" and value is None:
        return None
    whole, low, high = LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SamplingError(f"sampling setting {name} must be a number, not {value!r}")
    if whole and value != int(value):
        raise SamplingError(f"sampling setting {name} must be a whole number, not {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (f"between {low:g} and {high:g}" if low is not None and high is not None
                  else f"at least {low:g}" if low is not None else f"at most {high:g}")
        raise SamplingError(f"sampling setting {name} must be {bounds}, not {value!r}")
    return int(value) if whole else float(value)


@dataclass
class MergedSampling:
    """The settings to use, and one line for each value that was left out."""

    settings: SamplingSettings
    problems: list[str] = field(default_factory=list)

    def or_raise(self) -> SamplingSettings:
        if self.problems:
            raise SamplingError(self.problems[0])
        return self.settings


def merge_sampling(*layers: Mapping[str, Any] | None) -> MergedSampling:
    """Later layers win; a None value means "not set here"; a bad value keeps the one before it."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for layer in layers:
        for name, value in (layer or {}).items():
            if value is None:
                continue
            try:
                values[name] = check_value(name, value)
            except SamplingError as exc:
                problems.append(str(exc))
    return MergedSampling(SamplingSettings(**values), problems)


def sampling_values(settings: SamplingSettings) -> dict[str, Any]:
    """The values a chat saves (what the settings panel edits)."""
    return {
        "temperature": settings.temperature, "top_p": settings.top_p, "top_k": settings.top_k,
        "min_p": settings.min_p, "repeat_penalty": settings.repeat_penalty, "max_tokens": settings.max_tokens,
    }
