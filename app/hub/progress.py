"""Speed and time-left figures for downloads, shared by the terminal bar and the downloads page."""

from __future__ import annotations

import time
from collections import deque

from app.units import human_size


class RateMeter:
    """Bytes per second over the last few seconds (the first bytes of a resume do not count)."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def reset(self) -> None:
        self._samples.clear()

    def add(self, total_done: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._samples.append((now, total_done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window_s:
            self._samples.popleft()

    @property
    def speed(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


def format_speed(bytes_per_s: float) -> str:
    return f"{human_size(int(bytes_per_s))}/s" if bytes_per_s > 0 else "–"


def eta_seconds(done: int, total: int, bytes_per_s: float) -> float | None:
    if bytes_per_s <= 0 or total <= 0 or done >= total:
        return None
    return (total - done) / bytes_per_s


def format_eta(seconds: float | None) -> str:
    """``45 s``, ``3 min``, ``1 h 20 min``; ``–`` when unknown."""
    if seconds is None:
        return "–"
    s = int(seconds + 0.5)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s" if s < 600 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
