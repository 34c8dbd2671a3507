"""A conversation with a remote model: the same ``reply``/``last_stats`` seam as a local ChatSession."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from app.engine.protocol import GenerationStats, SamplingSettings
from app.remote.engine import RemoteEngine
from app.remote.messages import encode_messages
from app.templates.prompt import Message


@dataclass(frozen=True)
class RemoteFormat:
    """What the front ends see of a remote model's format: the server applies its own template."""

    model_name: str
    label: str = "the endpoint's own chat template"
    system_message: str | None = None
    stop: tuple[str, ...] = ()
    model: None = None

    def render(self, messages: Iterable[Message], *, remedy: str | None = None) -> str:
        return encode_messages(messages)


@dataclass
class RemoteSession:
    """Replies for one chat through an endpoint's /v1/chat/completions."""

    engine: RemoteEngine
    model: str
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    chat_id: str = "default"

    @property
    def chat_format(self) -> RemoteFormat:
        return RemoteFormat(f"remote: {self.engine.endpoint.name}/{self.model}")

    def reply(self, history: Sequence[Message], **sampling: Any) -> Iterator[str]:
        """Yield the assistant's reply to ``history`` as it streams (close early to stop it)."""
        settings = replace(self.sampling, **sampling) if sampling else self.sampling
        yield from self.engine.stream("", (), settings, self.chat_id, messages=list(history))

    @property
    def last_stats(self) -> GenerationStats | None:
        return self.engine.last_stats
