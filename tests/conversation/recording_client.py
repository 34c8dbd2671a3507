"""A stand-in for the engine process only, for prompt tests: it keeps the prompt it is asked to continue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class RecordingClient:
    """Keeps each prompt ``stream`` is given and answers "Sure."."""

    last_stats = None

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def stream(self, prompt: str, stop: Any, settings: Any, chat_id: str) -> Iterator[str]:
        self.prompts.append(prompt)
        yield from ["Sure", "."]
