"""The user's CPU thread setting ("auto" or a fixed count), kept in settings.json beside other settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from app.engine.protocol import parse_threads
from app.engine.settings_file import read_settings, write_setting
from app.errors import HearthError

KEY = "threads"


def load_thread_setting(settings_file: Path) -> int | Literal["auto"]:
    """The saved setting; "auto" when none is saved or the file cannot be read (loading must go on)."""
    try:
        value = read_settings(settings_file).get(KEY, "auto")
        return parse_threads(str(value))
    except HearthError:
        return "auto"


def save_thread_setting(settings_file: Path, value: int | Literal["auto"]) -> None:
    """Save ``value``, keeping every other key in the file (written whole, then renamed into place)."""
    write_setting(settings_file, KEY, parse_threads(str(value)))
