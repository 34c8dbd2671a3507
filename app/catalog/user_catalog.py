"""The user's own catalogue: imported models in the data folder, same schema, merged with the curated one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from app.errors import HearthError
from app.paths import app_dirs

USER_CATALOG_NAME = "user_catalog.json"


class UserCatalogError(HearthError):
    """The user catalogue cannot be read or changed; the message names the file and what to do."""


def user_catalog_path() -> Path:
    """``<data>/user_catalog.json`` (under HEARTH_HOME in tests)."""
    return app_dirs().data / USER_CATALOG_NAME


def read_document(path: Path | None = None) -> dict[str, Any] | None:
    """The user catalogue as JSON, or None when there is none yet. Not validated here."""
    path = path or user_catalog_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserCatalogError(f"cannot read your catalogue {path}: {exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserCatalogError(
            f"your catalogue {path} is not valid JSON (line {exc.lineno}): fix or delete the file"
        ) from None
    if not isinstance(document, dict):
        raise UserCatalogError(f"your catalogue {path} is not a JSON object: fix or delete the file")
    return document


def empty_document() -> dict[str, Any]:
    return {"schema_version": 1, "templates": {}, "models": []}


def write_document(document: dict[str, Any], path: Path | None = None) -> None:
    """Write atomically (temporary file, then rename); with no models left the file is removed."""
    path = path or user_catalog_path()
    if not document.get("models"):
        path.unlink(missing_ok=True)
        return
    used = {m["template"] for m in document["models"]}
    document = {**document, "templates": {k: v for k, v in document["templates"].items() if k in used}}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".user_catalog.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def with_model(document: dict[str, Any] | None, model: dict[str, Any],
               templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A copy of the document with ``model`` added (replacing one of the same id) and its templates."""
    result = document or empty_document()
    models = [m for m in result.get("models", []) if m.get("id") != model["id"]]
    return {
        "schema_version": result.get("schema_version", 1),
        "templates": {**result.get("templates", {}), **templates},
        "models": [*models, model],
    }


def without_model(document: dict[str, Any], model_id: str) -> dict[str, Any]:
    models = [m for m in document.get("models", []) if m.get("id") != model_id]
    return {**document, "models": models}
