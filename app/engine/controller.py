"""One engine controller per process: which engine runs (the local worker or a remote one), which
request is current, results of older requests dropped, and the one place where streamed tokens are
batched for a front end (the window; ``hearth serve`` keeps its own worker, see app.server)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.engine.interface import Engine
from app.engine.protocol import Done, Error, Event, LoadSettings, SamplingSettings, Tokens

EngineFactory = Callable[[], Engine]


@dataclass(frozen=True)
class Batch:
    """Text that arrived since the last drain, for request ``request_id``, and how many tokens it holds."""

    request_id: int
    text: str
    count: int


def _ignore(_event: Event) -> None:
    pass


def local_engine() -> Engine:
    """The local llama.cpp worker process (started now)."""
    from app.engine.client import EngineClient

    return EngineClient(None)


class EngineController:
    """Owns the engine and the identity of the reply in progress.

    The engine starts on first use (``factory``, the local worker by default), not when the
    controller is built; :meth:`use` switches to another kind of engine (a remote endpoint) and back,
    and :meth:`close` ends it (a later use starts a fresh one).

    Events arrive on the engine's thread. Tokens of the current request are kept here until the
    front end calls :meth:`drain` (on its own thread, at its own pace); ``wake`` is called when
    the first piece of a reply arrives, so the first words can show at once. Every other event
    goes to ``on_event`` (on the engine's thread).
    Tokens, Done and Error of a request that is no longer current are dropped.
    """

    def __init__(self, engine: Engine | None = None, on_event: Callable[[Event], None] | None = None,
                 wake: Callable[[], None] | None = None, *, factory: EngineFactory = local_engine) -> None:
        self.on_event: Callable[[Event], None] = on_event or _ignore
        self.wake = wake
        self._factory = factory
        self._kind: str | None = None  # None: the local worker; else the remote endpoint's name
        self._lock = threading.Lock()
        self._request: int | None = None
        self._text: list[str] = []
        self._count = 0
        self._first = False
        self._engine: Engine | None = None
        if engine is not None:
            self._adopt(engine)

    # ---- which engine ------------------------------------------------------------------------

    def _adopt(self, engine: Engine) -> Engine:
        engine.on_event = self._arrived
        self._engine = engine
        return engine

    @property
    def engine(self) -> Engine:
        """The engine, started now if it is not running."""
        return self._engine if self._engine is not None else self._adopt(self._factory())

    @property
    def started(self) -> bool:
        return self._engine is not None

    @property
    def kind(self) -> str | None:
        """None for the local worker, else the name of the remote endpoint in use."""
        return self._kind

    def attach(self, on_event: Callable[[Event], None], wake: Callable[[], None] | None = None) -> None:
        """The front end that receives events from now on."""
        self.on_event, self.wake = on_event, wake

    def use(self, kind: str | None, factory: EngineFactory) -> Engine:
        """Talk to the engine ``kind`` (None: local) from now on; switching ends the other one."""
        if self._engine is not None and kind != self._kind:
            self.close()
        self._kind, self._factory = kind, factory
        return self.engine

    def close(self) -> None:
        """End the engine (its process, its connection); nothing more of it is reported."""
        engine, self._engine = self._engine, None
        with self._lock:
            self._request = None
            self._text.clear()
        if engine is not None:
            engine.on_event = _ignore
            engine.close()

    # ---- commands ------------------------------------------------------------------------------

    def load(self, settings: LoadSettings) -> None:
        self.engine.load(settings)

    def unload(self) -> None:
        if self._engine is not None:
            self._engine.unload()

    @property
    def request_id(self) -> int | None:
        return self._request

    def generate(self, prompt: str, stop: Sequence[str], sampling: SamplingSettings | None,
                 chat_id: str) -> int:
        """Start a reply; it supersedes any earlier one (whose late events are dropped)."""
        engine = self.engine
        with self._lock:
            self._text.clear()
            self._count = 0
            self._first = True
            self._request = -1  # events before the id is known belong to this request
        request = engine.generate(prompt, stop, sampling, chat_id)
        with self._lock:
            self._request = request
        return request

    def stop(self, request_id: int | None = None) -> None:
        current = self._request
        if current is not None and request_id in (None, current) and self._engine is not None:
            self._engine.stop(current)

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
            wake = self.wake
            if first and wake is not None:
                wake()  # the first words show at once; the rest wait for the next drain
            return
        if isinstance(event, (Done, Error)) and event.request_id is not None:
            with self._lock:
                if not self._current(event.request_id):
                    return  # the end of a superseded reply
        self.on_event(event)
