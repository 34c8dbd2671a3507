"""Plain records the chat store hands out: a chat and one of its messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
Status = Literal["complete", "streaming", "stopped", "error", "interrupted"]

ROLES: tuple[str, ...] = ("system", "user", "assistant")
STATUSES: tuple[str, ...] = ("complete", "streaming", "stopped", "error", "interrupted")
# A reply whose writer died mid-stream (kill -9, a full disk): its text stays, it can be continued.
INTERRUPTED = "interrupted"
UNTITLED = "New chat"


@dataclass(frozen=True)
class Chat:
    """One conversation's settings; its messages are read separately."""

    id: int
    title: str
    created: float
    updated: float
    model: str | None = None
    system_message: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    pinned: bool = False
    archived: bool = False

    @property
    def display_title(self) -> str:
        return self.title or UNTITLED


@dataclass(frozen=True)
class StoredMessage:
    """One message as stored: its place in the chat, who said it, and how the reply went."""

    id: int
    chat_id: int
    position: int
    role: str
    content: str
    created: float
    status: str = "complete"
    tokens: int | None = None
    tokens_per_s: float | None = None
    model: str | None = None
