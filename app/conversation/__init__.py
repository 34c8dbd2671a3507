"""One chat's rules without Qt: history, settings, prompt building and the reply lifecycle."""

from __future__ import annotations

from app.conversation.conversation import Conversation, Reply
from app.conversation.prompt import chat_turns, request_prompt, request_turns
from app.conversation.settings import ChatSettings

__all__ = ["ChatSettings", "Conversation", "Reply", "chat_turns", "request_prompt", "request_turns"]
