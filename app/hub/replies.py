"""The one check on a file body's framing (status, ``Content-Range``, length) and its pace (minimum throughput)."""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Mapping

from app.hub.entries import shown
from app.hub.errors import HubServerError, HubTimeout

_CONTENT_RANGE = re.compile(r"^bytes (\d{1,20})-(\d{1,20})/(\d{1,20}|\*)$")


def check_body(status: int, headers: Mapping[str, str], offset: int, size: int, name: str) -> bool:
    """Whether the reply carries the bytes from ``offset`` to the end of a ``size``-byte file.

    True for a 206 with the exact range, False for a 200 with the whole file when a range was asked
    (the caller starts over); anything else is a :class:`HubServerError`, never a write at the
    wrong offset.
    """
    length = headers.get("content-length")
    if status == 206:
        raw = headers.get("content-range", "")
        match = _CONTENT_RANGE.match(raw.strip())
        if not match:
            raise _lying(name, f"a partial reply with the Content-Range {shown(raw, 40)}")
        start, end, total = int(match[1]), int(match[2]), match[3]
        if start != offset or end != size - 1 or (total != "*" and int(total) != size):
            raise _lying(name, f"bytes {start}-{end}/{total} when asked for bytes {offset}-{size - 1}/{size}")
        if length is not None and length.strip() != str(end - start + 1):
            raise _lying(name, f"{shown(length, 20)} bytes for the range {start}-{end}")
        return True
    if status != 200:
        raise _lying(name, f"HTTP {status} instead of the file")
    if length is not None and length.strip() != str(size):
        raise _lying(name, f"{shown(length, 20)} bytes where the listing says {size}")
    return offset == 0


def _lying(name: str, what: str) -> HubServerError:
    return HubServerError(
        f"the server sent {what} for {shown(name)}: that is a server error, not your connection; "
        "try again later (downloaded bytes are kept)"
    )


class Throughput:
    """Fails a transfer whose body bytes, over any ``window`` seconds, average under ``min_rate``.

    It spans retries: a server that stalls after a few bytes on every try fails it as surely as a
    trickle does. :meth:`check` is called after each read and before each retry.
    """

    def __init__(self, name: str, min_rate: float, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.min_rate, self.window, self._clock = name, min_rate, window, clock
        self._total = 0
        self._started = clock()
        self._samples: deque[tuple[float, int]] = deque([(self._started, 0)])

    def add(self, n: int) -> None:
        self._total += n
        now = self._clock()
        # One sample per hundredth of the window (reads closer together update the last one), so a
        # fast download keeps about a hundred samples, not one per read.
        if len(self._samples) > 1 and now - self._samples[-2][0] < self.window / 100:
            self._samples[-1] = (now, self._total)
        else:
            self._samples.append((now, self._total))
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window:
            self._samples.popleft()

    def check(self) -> None:
        if self.min_rate <= 0:
            return
        now = self._clock()
        if now - self._started < self.window:
            return
        while len(self._samples) > 1 and self._samples[1][0] <= now - self.window:
            self._samples.popleft()
        got = self._total - self._samples[0][1]
        if got < self.min_rate * self.window:
            raise HubTimeout(
                f"{shown(self.name)} arrived too slowly: {got:,} bytes in the last {self.window:g} s, under the "
                f"minimum of {self.min_rate:g} bytes/s; the server or the connection is stuck: try again later "
                "(downloaded bytes are kept; HEARTH_HUB_MIN_RATE changes the minimum)"
            )
