"""How the chat window names remote models and hands their messages over as a "prompt"."""

from __future__ import annotations

import json
from collections.abc import Iterable

from app.templates.prompt import Message

REMOTE_PREFIX = "remote:"


def remote_path(endpoint_name: str, model: str) -> str:
    """How the chat window names a remote model where it names local files: ``remote:NAME/MODEL``."""
    return f"{REMOTE_PREFIX}{endpoint_name}/{model}"


def parse_remote_path(path: str | object) -> tuple[str, str] | None:
    """(endpoint name, model id) of a ``remote:NAME/MODEL`` path, else None."""
    text = str(path)
    if not text.startswith(REMOTE_PREFIX) or "/" not in text:
        return None
    name, _, model = text[len(REMOTE_PREFIX):].partition("/")
    return (name, model) if name and model else None


def encode_messages(messages: Iterable[Message]) -> str:
    """A remote model's "prompt": the request's messages in OpenAI's JSON (the server templates them)."""
    return json.dumps([{"role": m.role, "content": m.content} for m in messages], ensure_ascii=False, indent=1)


def decode_messages(prompt: str) -> list[Message] | None:
    """The messages of an :func:`encode_messages` prompt, or None for any other text."""
    if not prompt.startswith("["):
        return None
    try:
        items = json.loads(prompt)
        return [Message(item["role"], item["content"]) for item in items]
    except (ValueError, TypeError, KeyError):
        return None
