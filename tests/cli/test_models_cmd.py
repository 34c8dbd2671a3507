"""``hearth models``: what is installed, the same list the window's model bar shows, and how to chat with each."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.catalog import load_catalog
from app.catalog.starter import starter_path, starter_variant
from app.cli import main
from app.library.installed import installed_models, resolve_model_path
from app.paths import app_dirs
from tests.engine.tiny_gguf import write_tiny_gguf


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_nothing_installed_says_how_to_get_a_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models")
    assert code == 0 and "No models installed" in out and "hearth starter" in out
    code, out, _ = run(capsys, "ls", "--json")
    assert code == 0 and json.loads(out) == []


def test_the_list_is_the_window_s_and_each_row_says_how_to_chat_with_it(
    capsys: pytest.CaptureFixture[str], smollm2: Path
) -> None:
    catalog = load_catalog()
    models_dir = app_dirs().models
    starter = catalog.starter()
    assert starter is not None
    installed = starter_path(models_dir, starter_variant(starter))
    installed.parent.mkdir(parents=True)
    shutil.copyfile(smollm2, installed)
    (models_dir / "mine").mkdir()
    own = write_tiny_gguf(models_dir / "mine" / "my-tiny.gguf")
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    rows = json.loads(out)
    window = installed_models(catalog, models_dir)
    assert [(r["name"], r["detail"], r["path"]) for r in rows] == [(m.name, m.detail, str(m.path)) for m in window]
    by_path = {Path(r["path"]): r for r in rows}
    assert by_path[installed]["id"] == starter.id and by_path[installed]["size"] == smollm2.stat().st_size
    assert resolve_model_path(starter.id, catalog, models_dir) == installed, "`hearth chat ID` runs this file"
    assert by_path[own]["id"] is None, "a file outside the catalogue is run by its path"
    code, out, _ = run(capsys, "models")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["Model", "Kind", "Size", "Chat", "with", "`hearth", "chat", "...`"]
    starter_line = next(line for line in lines if line.startswith(starter.name))
    assert starter_line.rstrip().endswith(starter.id) and "98.36 MB" in starter_line
    assert any(line.startswith("my-tiny") and line.rstrip().endswith(str(own)) for line in lines)
