"""Chats in and out of the store: JSON (round-trips) and Markdown (for reading)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.chats.records import ROLES, STATUSES, Chat, StoredMessage
from app.chats.store import ChatStore, title_from
from app.engine.reasoning import split_thinking
from app.errors import HearthError

EXPORT_FORMAT = "hearth-chat"
EXPORT_VERSION = 1


class ChatImportError(HearthError):
    """A file that is not a chat Hearth can import; the message says what is wrong where."""


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
    when = datetime.fromtimestamp(chat.created, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# {chat.display_title}", "", f"*{when}" + (f" · {chat.model}*" if chat.model else "*")]
    if chat.system_message:
        fence = _fence_for(chat.system_message)
        lines += ["", "**System message**", "", fence, chat.system_message, fence]
    for message in messages:
        heading = {"user": "You", "assistant": "Assistant", "system": "System"}[message.role]
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


def _field(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = obj.get(key)
    if value is not None and not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ChatImportError(f"{where}: \"{key}\" must be a {names}, not {type(value).__name__}")
    return value


def parse_chat(data: Any, where: str) -> dict[str, Any]:
    """Check one chat object of the export format; return the fields to insert."""
    if not isinstance(data, dict):
        raise ChatImportError(f"{where}: expected a JSON object with \"title\" and \"messages\"")
    title = _field(data, "title", str, where) or ""
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise ChatImportError(f"{where}: \"messages\" must be a list of {{\"role\", \"content\"}}")
    parsed = []
    for index, message in enumerate(messages):
        at = f"{where}, message {index + 1}"
        if not isinstance(message, dict):
            raise ChatImportError(f"{at}: expected an object with \"role\" and \"content\"")
        role = message.get("role")
        if role not in ROLES:
            raise ChatImportError(
                f"{at}: \"role\" is {role!r}; expected one of {', '.join(ROLES)}"
            )
        if "content" not in message:
            raise ChatImportError(f"{at}: \"content\" is missing")
        content = _field(message, "content", str, at)
        status = _field(message, "status", str, at) or "complete"
        if status not in STATUSES:
            raise ChatImportError(f"{at}: \"status\" is {status!r}; expected one of {', '.join(STATUSES)}")
        created = _field(message, "created", (int, float), at)
        tokens = _field(message, "tokens", int, at)
        rate = _field(message, "tokens_per_s", (int, float), at)
        parsed.append({
            "role": role, "content": content or "", "status": status, "created": created,
            "tokens": tokens, "tokens_per_s": rate, "model": _field(message, "model", str, at),
        })
    settings = _field(data, "settings", dict, where) or {}
    return {
        "title": title,
        "messages": parsed,
        "model": _field(data, "model", str, where),
        "system_message": _field(data, "system_message", str, where),
        "settings": settings,
        "created": _field(data, "created", (int, float), where),
    }


def import_file(store: ChatStore, path: Path) -> list[Chat]:
    """Import one chat (an object) or several (a list of objects) from a JSON export."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ChatImportError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ChatImportError(f"{path}: cannot read it as UTF-8 text ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ChatImportError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "expected a chat exported with `hearth chats export ID --format json`"
        ) from None
    items = data if isinstance(data, list) else [data]
    # Check everything first, so a bad file imports nothing.
    chats = [
        parse_chat(item, f"{path}" + (f", chat {n + 1}" if isinstance(data, list) else ""))
        for n, item in enumerate(items)
    ]
    imported = []
    for fields in chats:
        messages = fields.pop("messages")
        title = fields.pop("title") or next(
            (title_from(m["content"]) for m in messages if m["role"] == "user"), ""
        )
        imported.append(store.insert_chat(title, messages, **fields))
    return imported
