"""Qt fixtures: the application context on the real catalogue with an isolated HEARTH_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from app.catalog.hardware import describe
from app.ui.application import create_context
from app.ui.context import AppContext


@pytest.fixture
def context(qapp: QApplication, hearth_home: Path) -> AppContext:
    return create_context(qapp)


@pytest.fixture
def laptop() -> object:
    """A 16 GB machine with no GPU, described rather than detected, so verdicts are fixed."""
    return describe("ram=16GB")
