"""``hearth models``: the models installed on this machine, as the window's model list shows them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from app.catalog import Catalog, load_catalog
from app.cli.table import render_table
from app.cli.terminal import safe_json
from app.errors import HearthError
from app.library.installed import InstalledModel, installed_models, resolve_model_path
from app.paths import app_dirs
from app.units import human_size


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models", aliases=["ls"],
        help="list the models installed on this machine",
        description="List every model Hearth can chat with here: the starter, downloaded catalogue "
        "variants, GGUFs converted from GPTQ branches, imported files and files used in place from "
        "added model folders. The window's model list shows the same models; `hearth chat PATH` "
        "runs one.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.set_defaults(func=run)


def _size(model: InstalledModel) -> int | None:
    try:
        return model.path.stat().st_size
    except OSError:
        return None


def _model_id(model: InstalledModel, catalog: Catalog, models_dir: Path) -> str | None:
    """The catalogue id that `hearth chat ID` resolves to this very file, if there is one."""
    if model.model_id is None:
        return None
    try:
        same = resolve_model_path(model.model_id, catalog, models_dir).resolve() == model.path.resolve()
    except HearthError:
        return None
    return model.model_id if same else None


def run(args: argparse.Namespace) -> int:
    models_dir = app_dirs().models
    catalog = load_catalog()
    models = installed_models(catalog, models_dir)
    ids = [_model_id(m, catalog, models_dir) for m in models]
    if args.json:
        rows = [{"name": m.name, "id": ident, "detail": m.detail, "path": str(m.path), "size": _size(m)}
                for m, ident in zip(models, ids, strict=True)]
        print(safe_json(json.dumps(rows, indent=2, ensure_ascii=False)))
        return 0
    if not models:
        print(f"No models installed in {models_dir}. Run `hearth starter` for the tiny starter model, "
              "`hearth download REPO` for another, or add a folder of GGUFs in the window's Downloads page.")
        return 0
    print(render_table(["Model", "Kind", "Size", "Chat with `hearth chat ...`"],
                       [[m.name, m.detail, human_size(_size(m)), ident or str(m.path)]
                        for m, ident in zip(models, ids, strict=True)], right={2}))
    return 0
