"""Chats in and out of the store: JSON (round-trips) and Markdown (for reading)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.chats.import_check import (
    EXPORT_FORMAT,
    EXPORT_VERSION,
    ChatImportError,
    load_json,
    parse_chat,
    parse_import,
    read_import,
)
from app.chats.records import Chat, StoredMessage
from app.chats.rows import format_time
from app.chats.store import ChatStore, title_from
from app.engine.reasoning import split_thinking

__all__ = ["ChatImportError", "chat_to_json", "chat_to_markdown", "import_file", "parse_chat"]


def chat_to_json(chat: Chat, messages: list[StoredMessage]) -> dict[str, Any]:
    """The export format: ``{"title", "messages": [{"role", "content", ...}], ...}``."""
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "id": chat.id,
        "title": chat.title,
        "created": chat.created,
        "updated": chat.updated,
        "model": chat.model,
        "system_message": chat.system_message,
        "settings": chat.settings,
        "messages": [
            {
                "role": m.role,
                "content": m.content,
                "created": m.created,
                "status": m.status,
                "tokens": m.tokens,
                "tokens_per_s": m.tokens_per_s,
                "model": m.model,
            }
            for m in messages
        ],
    }


def _fence_for(text: str) -> str:
    """A backtick fence longer than any run of backticks in ``text``."""
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def chat_to_markdown(chat: Chat, messages: list[StoredMessage]) -> str:
    """A readable Markdown transcript: a heading per message, the content as written."""
    when = format_time(chat.created, "%Y-%m-%d %H:%M UTC", utc=True)
    lines = [f"# {chat.display_title}", "", f"*{when}" + (f" · {chat.model}*" if chat.model else "*")]
    if chat.system_message:
        fence = _fence_for(chat.system_message)
        lines += ["", "**System message**", "", fence, chat.system_message, fence]
    for message in messages:
        heading = {"user": "You", "assistant": "Assistant", "system": "System"}.get(message.role, "You")
        if message.role == "assistant" and message.model:
            heading += f" ({message.model})"
        if message.status not in ("complete",):
            heading += f" [{message.status}]"
        lines += ["", f"## {heading}", "", *_markdown_body(message)]
    return "\n".join(lines) + "\n"


def _markdown_body(message: StoredMessage) -> list[str]:
    """A message's text; a reply's thinking goes in a folded <details> block above the answer."""
    if not message.content:
        return ["*(empty)*"]
    split = split_thinking(message.content) if message.role == "assistant" else None
    if split is None or split.thinking is None:
        return [message.content]
    quoted = [f"> {line}" if line else ">" for line in split.thinking.splitlines()] or [">"]
    return ["<details><summary>Thinking</summary>", "", *quoted, "", "</details>", "",
            split.answer if split.answer else "*(no answer yet)*"]


def import_file(store: ChatStore, path: Path) -> list[Chat]:
    """Import one chat (an object) or several (a list of objects) from a JSON export.

    Everything is checked first (size, JSON, types, ranges, Unicode, depth), so a bad file
    imports nothing and says what is wrong where.
    """
    chats = parse_import(load_json(read_import(path), path), path)
    imported = []
    for fields in chats:
        messages = fields.pop("messages")
        title = fields.pop("title") or next(
            (title_from(m["content"]) for m in messages if m["role"] == "user"), ""
        )
        imported.append(store.insert_chat(title, messages, **fields))
    return imported
