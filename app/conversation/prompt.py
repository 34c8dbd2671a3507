"""The prompt rules every front end shares: which system message is sent, and a client's messages as turns.

The window and ``hearth chat`` reach them through :class:`~app.conversation.conversation.Conversation`;
the API server, which gets the whole conversation in each request, through :func:`request_prompt`.
Thinking in earlier replies and the template remedies are :meth:`ChatFormat.render`'s, for all three.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.conversation.settings import effective_system
from app.engine.chat_format import ChatFormat
from app.templates.prompt import Message, TemplateRefusal


def chat_turns(own_system: str | None, default_system: str | None, history: Iterable[Message]) -> list[Message]:
    """The messages for the template: the system message sent (the chat's own, ``""`` meaning none,
    else the model's default), then the history."""
    system = effective_system(own_system, default_system)
    return [*([Message("system", system)] if system else []), *history]


def request_turns(messages: Sequence[Message], default_system: str | None) -> list[Message]:
    """A client's messages by the chat's rule: a leading system message is the chat's own (an empty
    one means none); a request with no system message at all gets the model's default, as a chat
    whose system message was never set does in the window and in ``hearth chat``."""
    if messages and messages[0].role == "system":
        return chat_turns(messages[0].content, default_system, messages[1:])
    own = "" if any(m.role == "system" for m in messages) else None  # the client placed its own
    return chat_turns(own, default_system, messages)


def request_prompt(chat_format: ChatFormat, messages: Sequence[Message],
                   tools: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The prompt for an API request: the window's prompt for the same chat, byte for byte.

    A template that refuses the conversation but accepts it reshaped (its refusal names the
    remedy) gets it reshaped, as the window's button and ``hearth chat --fold-system`` do: a
    client cannot be asked to press a button.
    """
    turns = request_turns(messages, chat_format.system_message)
    try:
        return chat_format.render(turns, tools=tools)
    except TemplateRefusal as refusal:
        if refusal.remedy is None:
            raise
        return chat_format.render(turns, remedy=refusal.remedy, tools=tools)
