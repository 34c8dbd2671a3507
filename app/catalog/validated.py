"""Validated-catalogue stamps: a catalogue's full check (jsonschema and more) runs once per content, not per start.

The curated catalogue is checked when it is packaged (``python -m app.catalog.validated OUT`` writes the
bundle's stamp) and by the tests; a user's catalogue, or a HEARTH_CATALOG override, is checked the first time
Hearth sees its content, and its digest is remembered in the cache folder. A digest covers the document, the
schema and the rules' revision, so an edited file or a newer Hearth is checked again.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from app.paths import app_dirs, install_root, resource_path

# Bump when app/catalog/loader.py checks something new beyond the schema (ids, templates, duplicates).
RULES_REVISION = 1
BUNDLE_STAMP = "models_catalog.validated"
CACHE_STAMP = "validated_catalogues.txt"
_REMEMBERED = 32


def digest(document: Any) -> str:
    """sha256 of the document's canonical JSON, the schema and the rules' revision."""
    h = hashlib.sha256(f"hearth-catalog-rules-{RULES_REVISION}\n".encode())
    h.update(resource_path("schema", "models_catalog.schema.json").read_bytes())
    h.update(json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode())
    return h.hexdigest()


def _stamps() -> tuple[Path, Path]:
    return install_root() / BUNDLE_STAMP, app_dirs().cache / CACHE_STAMP


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return []


def is_validated(stamp: str) -> bool:
    """Whether a document with this digest passed the full check before (packaging, or an earlier start)."""
    return any(stamp in _read_lines(path) for path in _stamps())


def remember(stamp: str) -> None:
    """Note that a document passed the full check; a cache folder that cannot be written only costs time."""
    path = _stamps()[1]
    lines = [line for line in _read_lines(path) if line != stamp][-(_REMEMBERED - 1):]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text("\n".join([*lines, stamp]) + "\n", encoding="ascii")
        temporary.replace(path)
    except OSError:
        pass


def write_bundle_stamp(out: Path, catalogue: Path | None = None) -> str:
    """Check the curated catalogue in full and write its digest to ``out``; raise CatalogError if it is bad."""
    from app.catalog.loader import CatalogError, document_problems
    from app.paths import catalog_path

    path = catalogue or catalog_path()
    document = json.loads(path.read_text(encoding="utf-8"))
    problems = document_problems(document)
    if problems:
        raise CatalogError(path, problems)
    stamp = digest(document)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(stamp + "\n", encoding="ascii")
    return stamp


if __name__ == "__main__":  # the packaging step: python -m app.catalog.validated build/catalog/models_catalog.validated
    from app.errors import HearthError

    try:
        print(f"catalogue valid, stamp {write_bundle_stamp(Path(sys.argv[1]))[:16]}… written to {sys.argv[1]}")
    except (HearthError, IndexError, OSError, ValueError) as exc:
        print(f"hearth: cannot stamp the catalogue: {exc}", file=sys.stderr)
        sys.exit(1)
