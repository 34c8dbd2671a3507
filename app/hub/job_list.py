"""The part every job queue shares: a locked list of jobs, lookup by id, and change listeners."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class HasId(Protocol):
    @property
    def id(self) -> int: ...


J = TypeVar("J", bound=HasId)


class JobList(Generic[J]):
    """Jobs in order of arrival with their ids; listeners hear of every change. Thread-safe."""

    def __init__(self) -> None:
        self._jobs: list[J] = []
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._listeners: list[Callable[[J], None]] = []

    def jobs(self) -> list[J]:
        with self._lock:
            return list(self._jobs)

    def job(self, job_id: int) -> J:
        with self._lock:
            for job in self._jobs:
                if job.id == job_id:
                    return job
        raise KeyError(job_id)

    def subscribe(self, listener: Callable[[J], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[J], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _announce(self, job: J) -> None:
        for listener in list(self._listeners):
            listener(job)
