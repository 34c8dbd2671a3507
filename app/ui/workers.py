"""The one way the window runs work off the GUI thread: a function on another thread, its result back
on the GUI thread, and a result that a newer request has superseded dropped (as napari's ``create_worker``)."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable
from enum import Enum
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QObject, QThreadPool, Signal

T = TypeVar("T")
Report = Callable[[Any], None]
"""What a reporting function is given: ``report(value)`` sends one progress value to the GUI thread."""

_POOL: QThreadPool | None = None
_RUNNING: set[LatestWorker[Any]] = set()


class Lane(Enum):
    """Where a request runs.

    FILES: folder scans and file reads, on a small pool of two threads.
    WAITS: work that waits on something else (the Hub, another machine, a server starting, a child
    process asking the GPUs): a daemon thread each, so a slow network never delays a folder scan
    and never holds the app open when the window closes.
    """

    FILES = "files"
    WAITS = "waits"


def pool() -> QThreadPool:
    """A small pool of its own, so folder scans never wait behind Qt's global work."""
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(2)
    return _POOL


class LatestWorker(QObject, Generic[T]):
    """Runs ``submit(function)`` off the GUI thread; ``on_result`` gets the newest request's result.

    A request submitted later supersedes the earlier ones: their results, errors and progress are
    dropped. ``on_error`` (default: none) receives an exception raised by the newest request's
    function; ``on_progress`` (default: none) each value a ``submit_reporting`` function reports.
    """

    _finished = Signal(int, object, object)
    _progress = Signal(int, object)

    def __init__(self, on_result: Callable[[T], None], on_error: Callable[[Exception], None] | None = None,
                 parent: QObject | None = None, *, on_progress: Report | None = None,
                 lane: Lane = Lane.FILES) -> None:
        super().__init__(parent)
        self.on_result = on_result
        self.on_error = on_error
        self.on_progress = on_progress
        self.lane = lane
        self._tickets = itertools.count(1)
        self._latest = 0
        self._finished.connect(self._deliver)
        self._progress.connect(self._deliver_progress)

    @property
    def busy(self) -> bool:
        """Whether the newest request has not reported yet."""
        return self._latest != 0

    def submit(self, function: Callable[[], T]) -> int:
        """Start ``function`` off the GUI thread; returns its ticket (the newest one wins)."""
        return self.submit_reporting(lambda _report: function())

    def submit_reporting(self, function: Callable[[Report], T]) -> int:
        """As :meth:`submit`; ``function(report)`` may call ``report(value)`` on its thread, and each value
        reaches ``on_progress`` on the GUI thread while this request is still the newest."""
        self._latest = ticket = next(self._tickets)

        def report(value: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the worker's owner is gone
                self._progress.emit(ticket, value)

        def run() -> None:  # another thread
            try:
                result, error = function(report), None
            except Exception as exc:  # reported on the GUI thread, never lost on the worker's
                result, error = None, exc
            # RuntimeError: the worker's owner is gone (the window closed): nobody waits for this result.
            with contextlib.suppress(RuntimeError):
                self._finished.emit(ticket, result, error)

        if self.lane is Lane.FILES:
            pool().start(run)
        else:
            threading.Thread(target=run, name="hearth-waits", daemon=True).start()
        return ticket

    def cancel(self) -> None:
        """Drop whatever is running: its result will not be delivered."""
        self._latest = 0

    def _deliver(self, ticket: int, result: Any, error: Exception | None) -> None:  # the GUI thread
        if ticket != self._latest:
            return  # superseded by a newer request, or cancelled
        self._latest = 0
        if error is not None:
            if self.on_error is not None:
                self.on_error(error)
            return
        self.on_result(result)

    def _deliver_progress(self, ticket: int, value: Any) -> None:  # the GUI thread
        if ticket == self._latest and self.on_progress is not None:
            self.on_progress(value)


def create_worker(function: Callable[[], T], on_result: Callable[[T], None],
                  on_error: Callable[[Exception], None] | None = None,
                  parent: QObject | None = None, *, lane: Lane = Lane.FILES) -> LatestWorker[T]:
    """Run ``function`` once off the GUI thread (a one-shot :class:`LatestWorker`: nothing supersedes it)."""
    def done(value: T) -> None:
        _RUNNING.discard(worker)
        on_result(value)

    def failed(exc: Exception) -> None:
        _RUNNING.discard(worker)
        if on_error is not None:
            on_error(exc)

    worker: LatestWorker[T] = LatestWorker(done, failed, parent, lane=lane)
    _RUNNING.add(worker)  # kept alive until it reports, even when the caller keeps no reference
    worker.submit(function)
    return worker

