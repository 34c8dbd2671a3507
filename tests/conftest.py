"""Shared fixtures: offscreen Qt, an isolated HEARTH_HOME per test, the real test model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HEARTH_THEME", "light")


@pytest.fixture(autouse=True)
def hearth_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own empty HEARTH_HOME; nothing touches the user's real folders."""
    home = tmp_path / "hearth-home"
    monkeypatch.setenv("HEARTH_HOME", str(home))
    for name in ("HEARTH_MODELS_DIR", "HEARTH_CATALOG", "HEARTH_HARDWARE"):
        monkeypatch.delenv(name, raising=False)
    yield home


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1 GGUF (fetched by ``make test``)."""
    from tests.assets import smollm2_path

    path = smollm2_path()
    assert path.is_file(), f"{path} is missing: run `make test` (or `python -m tests.assets`) first"
    return path
