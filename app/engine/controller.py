"""One engine controller per process: which request is current, results of older requests dropped,
and the one place where streamed tokens are batched for a front end (the window, the API server)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.engine.interface import Engine
from app.engine.protocol import Done, Error, Event, SamplingSettings, Tokens


@dataclass(frozen=True)
class Batch:
    """Text that arrived since the last drain, for request ``request_id``, and how many tokens it holds."""

    request_id: int
    text: str
    count: int


class EngineController:
    """Owns the engine and the identity of the reply in progress.

    Events arrive on the engine's thread. Tokens of the current request are kept here until the
    front end calls :meth:`drain` (on its own thread, at its own pace); ``wake`` is called when
    the first piece of a reply arrives, so the first words can show at once. Every other event
    goes to ``on_event`` (on the engine's thread).
    Tokens, Done and Error of a request that is no longer current are dropped.
    """

    def __init__(self, engine: Engine, on_event: Callable[[Event], None],
                 wake: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.on_event = on_event  # non-token events of the current request, on the engine's thread
        self.wake = wake
        self._lock = threading.Lock()
        self._request: int | None = None
        self._text: list[str] = []
        self._count = 0
        self._first = False
        engine.on_event = self._arrived

    @property
    def request_id(self) -> int | None:
        return self._request

    def generate(self, prompt: str, stop: Sequence[str], sampling: SamplingSettings | None,
                 chat_id: str) -> int:
        """Start a reply; it supersedes any earlier one (whose late events are dropped)."""
        with self._lock:
            self._text.clear()
            self._count = 0
            self._first = True
            self._request = -1  # events before the id is known belong to this request
        request = self.engine.generate(prompt, stop, sampling, chat_id)
        with self._lock:
            self._request = request
        return request

    def stop(self, request_id: int | None = None) -> None:
        current = self._request
        if current is not None and request_id in (None, current):
            self.engine.stop(current)

    def end(self) -> None:
        """The front end closed the current reply: nothing more of it is wanted."""
        with self._lock:
            self._request = None

    def drain(self) -> Batch | None:
        """The text gathered since the last drain (None when there is none)."""
        with self._lock:
            if not self._text or self._request is None:
                return None
            batch = Batch(self._request, "".join(self._text), self._count)
            self._text.clear()
            self._count = 0
        return batch

    def _current(self, request_id: int | None) -> bool:
        """Whether an event of ``request_id`` belongs to the reply in progress (-1: its id is being assigned)."""
        return self._request is not None and (self._request == -1 or request_id == self._request)

    def _arrived(self, event: Event) -> None:  # the engine's thread
        if isinstance(event, Tokens):
            with self._lock:
                if not self._current(event.request_id):
                    return  # a superseded reply's tokens
                first, self._first = self._first, False
                self._text.append(event.text)
                self._count += event.count
            if first and self.wake is not None:
                self.wake()  # the first words show at once; the rest wait for the next drain
            return
        if isinstance(event, (Done, Error)) and event.request_id is not None:
            with self._lock:
                if not self._current(event.request_id):
                    return  # the end of a superseded reply
        self.on_event(event)
