"""The chat page's engine link: a load superseded by a quicker, later one is dropped."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from app.engine.protocol import ModelInfo
from app.ui.engine.engine_link import EngineLink
from tests.engine.tiny_gguf import write_tiny_gguf


def test_two_quick_loads_end_on_the_later_model(qtbot: QtBot, tmp_path: Path, smollm2: Path) -> None:
    """SmolLM2's header (a 49k-token vocabulary) takes longer to plan than a tiny file's, so
    its plan arrives second; it must not replace the model asked for last."""
    tiny = write_tiny_gguf(tmp_path / "tiny.gguf")
    link = EngineLink()
    loaded: list[ModelInfo] = []
    link.loaded.connect(loaded.append)
    try:
        link.load(str(smollm2))
        link.load(str(tiny))
        qtbot.waitUntil(lambda: link.info is not None, timeout=60_000)
        qtbot.wait(300)  # a superseded plan, had it been kept, would start a second load now
        assert not link.loading
        assert [Path(info.path).name for info in loaded] == ["tiny.gguf"]
        assert link.info is not None and Path(link.info.path) == tiny
    finally:
        link.shutdown()


def test_a_superseded_plan_is_dropped_before_it_reaches_the_engine(qtbot: QtBot, tmp_path: Path) -> None:
    link = EngineLink()
    failures: list[str] = []
    link.load_failed.connect(failures.append)
    try:
        link.load(str(tmp_path / "missing-first.gguf"))
        link.load(str(tmp_path / "missing-second.gguf"))
        qtbot.waitUntil(lambda: not link.loading, timeout=10_000)
        qtbot.wait(200)
        assert len(failures) == 1 and "missing-second.gguf" in failures[0]
    finally:
        link.shutdown()
