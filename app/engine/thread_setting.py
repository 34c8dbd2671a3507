"""The user's CPU thread setting ("auto" or a fixed count), kept in settings.json beside other settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from app.engine.protocol import parse_threads
from app.errors import HearthError

KEY = "threads"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise HearthError(f"cannot read the settings file {path} ({exc}): fix or delete it") from None
    return data if isinstance(data, dict) else {}


def load_thread_setting(settings_file: Path) -> int | Literal["auto"]:
    """The saved setting; "auto" when none is saved or the file cannot be read (loading must go on)."""
    try:
        value = _read(settings_file).get(KEY, "auto")
        return parse_threads(str(value))
    except HearthError:
        return "auto"


def save_thread_setting(settings_file: Path, value: int | Literal["auto"]) -> None:
    """Save ``value``, keeping every other key in the file (written whole, then renamed into place)."""
    value = parse_threads(str(value))
    data = _read(settings_file)
    data[KEY] = value
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    partial = settings_file.with_name(settings_file.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(settings_file)
