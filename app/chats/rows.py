"""Stored rows to records, whatever the row holds: a damaged or hostile row never breaks a listing."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from app.chats.records import ROLES, STATUSES, Chat, StoredMessage

# Timestamps shown and exported lie between the epoch and the end of year 9999.
LATEST_TIME = 253402300799.0
MAX_INTEGER = 2**62


def safe_time(value: Any) -> float:
    """A finite timestamp in range, or 0.0 for anything else (NaN, 1e300, -1e18, text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    number = float(value)
    if not math.isfinite(number) or number < 0 or number > LATEST_TIME:
        return 0.0
    return number


def format_time(stamp: float, pattern: str = "%Y-%m-%d %H:%M", *, utc: bool = False) -> str:
    """``stamp`` as text; "?" when the platform cannot show it (never an exception)."""
    try:
        when = datetime.fromtimestamp(safe_time(stamp), tz=timezone.utc if utc else None)
        return when.strftime(pattern)
    except (OverflowError, OSError, ValueError):
        return "?"


def text_value(value: Any, default: str = "") -> str:
    """A str from any stored value: bytes decoded leniently, numbers written out, lone surrogates replaced."""
    if value is None:
        return default
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    text = value if isinstance(value, str) else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def optional_text(value: Any) -> str | None:
    return None if value is None else text_value(value)


def optional_count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and math.isfinite(value) and 0 <= value <= MAX_INTEGER:
            return int(value)
        return None
    return value if 0 <= value <= MAX_INTEGER else None


def optional_rate(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) and 0 <= number <= 1e9 else None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} in settings")


def _settings(value: Any) -> dict[str, Any]:
    if not isinstance(value, (str, bytes)) or not value:
        return {}
    try:
        settings = json.loads(value, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return {}
    return settings if isinstance(settings, dict) else {}


def _identifier(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def chat_from_row(row: Sequence[Any]) -> Chat:
    """A Chat from ``id, title, created, updated, model, system_message, settings, pinned, archived``."""
    return Chat(
        id=_identifier(row[0]), title=text_value(row[1]), created=safe_time(row[2]),
        updated=safe_time(row[3]), model=optional_text(row[4]), system_message=optional_text(row[5]),
        settings=_settings(row[6]), pinned=bool(row[7]), archived=bool(row[8]),
    )


def message_from_row(row: Sequence[Any]) -> StoredMessage:
    """A StoredMessage from ``id, chat_id, position, role, content, created, status, tokens, tokens_per_s, model``."""
    role = text_value(row[3])
    status = text_value(row[6])
    return StoredMessage(
        id=_identifier(row[0]), chat_id=_identifier(row[1]), position=_identifier(row[2]),
        role=role if role in ROLES else "user", content=text_value(row[4]),
        created=safe_time(row[5]), status=status if status in STATUSES else "error",
        tokens=optional_count(row[7]), tokens_per_s=optional_rate(row[8]), model=optional_text(row[9]),
    )
