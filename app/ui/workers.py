"""The one way the window runs work off the GUI thread: a function on a pool thread, its result back
on the GUI thread, and a result that a newer request has superseded dropped (as napari's ``create_worker``)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

T = TypeVar("T")

_POOL: QThreadPool | None = None
_RUNNING: set[LatestWorker[Any]] = set()


def pool() -> QThreadPool:
    """A small pool of its own, so folder scans never wait behind Qt's global work."""
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(2)
    return _POOL


class _Job(QRunnable):
    def __init__(self, worker: LatestWorker[Any], ticket: int, function: Callable[[], Any]) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.worker, self.ticket, self.function = worker, ticket, function

    def run(self) -> None:  # a pool thread
        try:
            result, error = self.function(), None
        except Exception as exc:  # reported on the GUI thread, never lost on the pool's
            result, error = None, exc
        # RuntimeError: the worker's owner is gone (the window closed): nobody waits for this result.
        with contextlib.suppress(RuntimeError):
            self.worker._finished.emit(self.ticket, result, error)


class LatestWorker(QObject, Generic[T]):
    """Runs ``submit(function)`` off the GUI thread; ``on_result`` gets the newest request's result.

    A request submitted later supersedes the earlier ones: their results (and errors) are dropped.
    ``on_error`` (default: none) receives an exception raised by the newest request's function.
    """

    _finished = Signal(int, object, object)

    def __init__(self, on_result: Callable[[T], None], on_error: Callable[[Exception], None] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.on_result = on_result
        self.on_error = on_error
        self._tickets = itertools.count(1)
        self._latest = 0
        self._finished.connect(self._deliver)

    @property
    def busy(self) -> bool:
        """Whether the newest request has not reported yet."""
        return self._latest != 0

    def submit(self, function: Callable[[], T]) -> int:
        """Start ``function`` on a pool thread; returns its ticket (the newest one wins)."""
        self._latest = next(self._tickets)
        pool().start(_Job(self, self._latest, function))
        return self._latest

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


def create_worker(function: Callable[[], T], on_result: Callable[[T], None],
                  on_error: Callable[[Exception], None] | None = None,
                  parent: QObject | None = None) -> LatestWorker[T]:
    """Run ``function`` once off the GUI thread (a one-shot :class:`LatestWorker`)."""
    def done(value: T) -> None:
        _RUNNING.discard(worker)
        on_result(value)

    def failed(exc: Exception) -> None:
        _RUNNING.discard(worker)
        if on_error is not None:
            on_error(exc)

    worker: LatestWorker[T] = LatestWorker(done, failed, parent)
    _RUNNING.add(worker)  # kept alive until it reports, even when the caller keeps no reference
    worker.submit(function)
    return worker
