"""settings.json: read whole, and one key replaced in place (written whole, then renamed), others kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.errors import HearthError


def read_settings(path: Path) -> dict[str, Any]:
    """Every key in the file ({} when there is none); an unreadable file raises HearthError naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise HearthError(f"cannot read the settings file {path} ({exc}): fix or delete it") from None
    return data if isinstance(data, dict) else {}


def write_setting(path: Path, key: str, value: Any) -> None:
    """Set ``key`` (None removes it), keeping every other key. A file that cannot be read is left as it
    is (HearthError): nothing the user wrote there is overwritten."""
    data = read_settings(path)
    if value is None:
        data.pop(key, None)
    else:
        data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)
