"""Checking a chat import before anything is stored: size, JSON, types, ranges, Unicode, depth."""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from app.chats.records import INTERRUPTED, ROLES, STATUSES
from app.chats.rows import LATEST_TIME
from app.errors import HearthError

EXPORT_FORMAT = "hearth-chat"
EXPORT_VERSION = 1

MAX_IMPORT_BYTES = 16 * 1024 * 1024  # a chat export of 16 MB holds millions of words
# Upper bounds on the JSON objects and lists, and on the values (by their separators), in one
# file: they keep the memory parsing takes to a couple of hundred MB whatever the file holds.
MAX_CONTAINERS = 400_000
MAX_SEPARATORS = 1_000_000
MAX_CHATS = 10_000
MAX_MESSAGES = 100_000
MAX_LINE_FIELD = 500  # title and model names: longer ones are shortened
MAX_SETTINGS_BYTES = 64 * 1024
MAX_SETTINGS_DEPTH = 16
MAX_TOKENS = 10**12
MAX_RATE = 1e9

# Controls that have no place in a one-line field (title, model name): they become spaces.
_LINE_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class ChatImportError(HearthError):
    """A file that is not a chat Hearth can import; the message says what is wrong where."""


def _size_text(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def read_import(path: Path) -> bytes:
    """The file's bytes, refusing (before reading further) anything over MAX_IMPORT_BYTES."""
    limit = MAX_IMPORT_BYTES
    too_big = (
        f"{path}: larger than {_size_text(limit)}, the most Hearth imports at once; "
        "split the export into smaller files"
    )
    try:
        with open(path, "rb") as file:
            info = os.fstat(file.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise ChatImportError(f"{path}: is a folder; give a chat file exported as JSON")
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                raise ChatImportError(too_big)
            # Devices and pipes (/dev/zero) report no size: read at most one byte past the limit.
            data = file.read(limit + 1)
    except FileNotFoundError:
        raise ChatImportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ChatImportError(f"{path}: is a folder; give a chat file exported as JSON") from None
    except OSError as exc:
        raise ChatImportError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise ChatImportError(too_big)
    return data


def _reject_constant(name: str) -> Any:
    raise ChatImportError(f"{name} is not a number Hearth accepts; use a finite number")


def load_json(data: bytes, path: Path) -> Any:
    """Parse an import's bytes as JSON, with every failure as one line naming the file."""
    expected = "expected a chat exported with `hearth chats export ID --format json`"
    containers = data.count(b"[") + data.count(b"{")
    separators = data.count(b",") + data.count(b":")
    if containers > MAX_CONTAINERS or separators > MAX_SEPARATORS:
        raise ChatImportError(
            f"{path}: more than {MAX_CONTAINERS:,} JSON objects and lists or {MAX_SEPARATORS:,} "
            "values, more than Hearth imports at once; split the export into smaller files"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ChatImportError(
            f"{path}: not UTF-8 text (a bad byte at offset {exc.start}); {expected}"
        ) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ChatImportError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); {expected}"
        ) from None
    except ChatImportError as exc:
        raise ChatImportError(f"{path}: {exc}") from None
    except RecursionError:
        raise ChatImportError(f"{path}: JSON nested too deeply; {expected}") from None
    except ValueError as exc:  # an integer with thousands of digits
        raise ChatImportError(f"{path}: a number in it is too large ({exc}); {expected}") from None


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = (kind,) if isinstance(kind, type) else kind
    return " or ".join(k.__name__ for k in kinds)


def _typed(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = obj.get(key)
    if value is None:
        return None
    kinds = (kind,) if isinstance(kind, type) else kind
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise ChatImportError(
            f"{where}: \"{key}\" must be a {_kind_name(kind)}, not {type(value).__name__}"
        )
    return value


def _text(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = _typed(obj, key, str, where)
    surrogate = _SURROGATE.search(value) if value is not None else None
    if surrogate is not None:
        raise ChatImportError(
            f"{where}: \"{key}\" holds a lone surrogate (\\u{ord(surrogate.group()):04x}), which is "
            "not valid Unicode text; fix or remove that character"
        )
    return value


def _line(obj: dict[str, Any], key: str, where: str) -> str | None:
    """A one-line field: controls become spaces, runs of spaces one, long text shortened."""
    value = _text(obj, key, where)
    if value is None:
        return None
    value = " ".join(_LINE_CONTROLS.sub(" ", value).split())
    return value if len(value) <= MAX_LINE_FIELD else value[: MAX_LINE_FIELD - 1] + "…"


def _finite(value: int | float) -> bool:
    # math.isfinite would overflow on an int of hundreds of digits; ints are finite anyway.
    return isinstance(value, int) or math.isfinite(value)


def _shown(value: int | float) -> str:
    return repr(value) if isinstance(value, float) or abs(value) < 10**30 else "a number far too large"


def _number(obj: dict[str, Any], key: str, where: str, low: float, high: float,
            kind: type | tuple[type, ...] = (int, float)) -> Any:
    value = _typed(obj, key, kind, where)
    if value is None:
        return None
    if not _finite(value) or not low <= value <= high:
        raise ChatImportError(
            f"{where}: \"{key}\" is {_shown(value)}; expected a number from {low:g} to {high:g}"
        )
    return value


def _time(obj: dict[str, Any], key: str, where: str) -> float | None:
    value = _typed(obj, key, (int, float), where)
    if value is None:
        return None
    if not _finite(value) or not 0 <= value <= LATEST_TIME:
        raise ChatImportError(
            f"{where}: \"{key}\" is {_shown(value)}, not a time Hearth can show; expected seconds "
            f"since 1970 (0 to {LATEST_TIME:.0f})"
        )
    return float(value)


def _depth_within(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def _settings(obj: dict[str, Any], where: str) -> dict[str, Any]:
    settings = _typed(obj, "settings", dict, where) or {}
    if not _depth_within(settings, MAX_SETTINGS_DEPTH):
        raise ChatImportError(f"{where}: \"settings\" is nested more than {MAX_SETTINGS_DEPTH} deep")
    try:
        size = len(json.dumps(settings).encode("utf-8"))
    except (UnicodeEncodeError, ValueError):
        raise ChatImportError(f"{where}: \"settings\" holds text that is not valid Unicode") from None
    if size > MAX_SETTINGS_BYTES:
        raise ChatImportError(f"{where}: \"settings\" is {size:,} bytes; at most {MAX_SETTINGS_BYTES:,}")
    return settings


def _message(message: Any, at: str) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise ChatImportError(f"{at}: expected an object with \"role\" and \"content\"")
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise ChatImportError(f"{at}: \"role\" is {role!r:.40}; expected one of {', '.join(ROLES)}")
    if "content" not in message:
        raise ChatImportError(f"{at}: \"content\" is missing")
    status = _typed(message, "status", str, at) or "complete"
    if status not in STATUSES:
        raise ChatImportError(
            f"{at}: \"status\" is {status!r:.40}; expected one of {', '.join(STATUSES)}"
        )
    return {
        "role": role,
        "content": _text(message, "content", at) or "",
        # A reply that was streaming when exported has no writer any more.
        "status": INTERRUPTED if status == "streaming" else status,
        "created": _time(message, "created", at),
        "tokens": _number(message, "tokens", at, 0, MAX_TOKENS, int),
        "tokens_per_s": _number(message, "tokens_per_s", at, 0, MAX_RATE),
        "model": _line(message, "model", at),
    }


def parse_chat(data: Any, where: str) -> dict[str, Any]:
    """Check one chat object of the export format; return the fields to insert."""
    if not isinstance(data, dict):
        raise ChatImportError(f"{where}: expected a JSON object with \"title\" and \"messages\"")
    kind = data.get("format")
    if kind is not None and kind != EXPORT_FORMAT:
        raise ChatImportError(f"{where}: \"format\" is {kind!r:.40}, not {EXPORT_FORMAT!r}")
    version = data.get("version")
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or version > EXPORT_VERSION
    ):
        raise ChatImportError(
            f"{where}: export version {version!r:.20} is newer than this Hearth reads "
            f"({EXPORT_VERSION}); update Hearth"
        )
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise ChatImportError(f"{where}: \"messages\" must be a list of {{\"role\", \"content\"}}")
    if len(messages) > MAX_MESSAGES:
        raise ChatImportError(f"{where}: {len(messages):,} messages; at most {MAX_MESSAGES:,} per chat")
    return {
        "title": _line(data, "title", where) or "",
        "messages": [_message(m, f"{where}, message {n + 1}") for n, m in enumerate(messages)],
        "model": _line(data, "model", where),
        "system_message": _text(data, "system_message", where),
        "settings": _settings(data, where),
        "created": _time(data, "created", where),
    }


def parse_import(data: Any, path: Path) -> list[dict[str, Any]]:
    """Every chat of a parsed file (one object or a list of them), all checked before any is stored."""
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ChatImportError(f"{path}: the list holds no chats")
    if len(items) > MAX_CHATS:
        raise ChatImportError(f"{path}: {len(items):,} chats; at most {MAX_CHATS:,} in one file")
    return [
        parse_chat(item, f"{path}" + (f", chat {n + 1}" if isinstance(data, list) else ""))
        for n, item in enumerate(items)
    ]
