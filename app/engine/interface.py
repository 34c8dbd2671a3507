"""What a front end needs of an engine: the local llama.cpp worker's client implements it today,
a remote OpenAI-compatible engine next (both report through ``on_event``, from their own thread)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from app.engine.protocol import Event, LoadSettings, SamplingSettings

EventHandler = Callable[[Event], None]


@runtime_checkable
class Engine(Protocol):
    """Loads a model, streams replies as events (Loaded, Tokens, Done, Error, Crashed, Unloaded)."""

    on_event: EventHandler | None

    def load(self, settings: LoadSettings) -> None: ...

    def generate(self, prompt: str, stop: Sequence[str] = (), sampling: SamplingSettings | None = None,
                 chat_id: str = "default") -> int: ...

    def stop(self, request_id: int | None = None) -> None: ...

    def unload(self) -> None: ...

    def close(self) -> None: ...
