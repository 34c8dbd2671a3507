"""The model library: one scan for the window's list and the command line's MODEL, the same file for the same model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.catalog import load_catalog
from app.catalog.starter import starter_path, starter_variant
from app.errors import HearthError
from app.library.installed import installed_models, resolve_model_path
from app.paths import app_dirs


def test_the_cli_and_the_window_pick_the_same_file_for_a_model(smollm2: Path) -> None:
    catalog, models = load_catalog(), app_dirs().models
    starter = catalog.starter()
    assert starter is not None
    with pytest.raises(HearthError, match="no GGUF file installed"):
        resolve_model_path(starter.id, catalog, models)
    path = starter_path(models, starter_variant(starter))
    path.parent.mkdir(parents=True)
    shutil.copyfile(smollm2, path)
    listed = installed_models(catalog, models)
    assert listed[0].path == path and listed[0].name == starter.name and "starter" in listed[0].detail
    assert resolve_model_path(starter.id, catalog, models) == listed[0].path


def test_a_file_outside_the_catalogue_is_listed_by_its_name(tmp_path: Path, smollm2: Path) -> None:
    models = app_dirs().models
    own = models / "mine" / "my-model.gguf"
    own.parent.mkdir(parents=True)
    shutil.copyfile(smollm2, own)
    listed = installed_models(load_catalog(), models)
    mine = [m for m in listed if m.path == own]
    assert len(mine) == 1, "listed once"
    # The same bytes as the catalogue's SmolLM2 file: recognised as that model, else shown by its name.
    assert (mine[0].name, mine[0].detail) in (("SmolLM2 135M Instruct", "Q4_1"), ("my-model", "local file"))
    assert resolve_model_path(str(own), load_catalog()) == own
