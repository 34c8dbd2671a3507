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


def test_a_stuck_load_can_be_cancelled_and_the_next_load_works(qtbot: QtBot, tmp_path: Path, smollm2: Path) -> None:
    """llama.cpp cannot stop a load half-way: cancelling ends the worker, and the next load starts a fresh one."""
    import psutil

    tiny = write_tiny_gguf(tmp_path / "tiny.gguf")
    link = EngineLink()
    try:
        with qtbot.waitSignal(link.loaded, timeout=60_000):
            link.load(str(tiny))
        pid = getattr(link.controller.engine, "pid", None)
        assert pid is not None
        worker = psutil.Process(pid)
        worker.suspend()  # a load that never ends (a hung driver, a dead network disk)
        link.load(str(smollm2))
        qtbot.waitUntil(lambda: link.plan is not None, timeout=30_000)  # planned and sent to the worker
        qtbot.wait(300)
        assert link.loading and link.info is None
        with qtbot.waitSignal(link.load_failed, timeout=10_000) as failed:
            link.cancel_load()
        assert failed.args[0] == "Loading was cancelled."
        assert not link.loading and not link.controller.started
        worker.wait(timeout=15)  # the stuck worker is gone (TimeoutExpired if it lingers)
        with qtbot.waitSignal(link.loaded, timeout=60_000) as loaded:
            link.load(str(tiny))
        assert Path(loaded.args[0].path) == tiny
    finally:
        link.shutdown()


def test_the_model_bar_offers_cancel_while_loading_and_counts_the_seconds(qtbot: QtBot, tmp_path: Path) -> None:
    from app.library.installed import InstalledModel
    from app.ui.chat.model_bar import ModelBar
    from app.ui.theme import LIGHT

    bar = ModelBar(LIGHT)
    qtbot.addWidget(bar)
    model = tmp_path / "m.gguf"
    bar.set_models([InstalledModel(model, "M", "Q4_0")], str(model))
    assert bar.load_button.text() == "Load"
    bar.show_loading("M")
    assert bar.loading and bar.load_button.text() == "Cancel" and bar.load_button.isEnabled()
    qtbot.waitUntil(lambda: bar.state.text().endswith(" s"), timeout=3000)
    assert bar.state.text().startswith("Loading M…")
    with qtbot.waitSignal(bar.cancel_requested, timeout=1000):
        bar.load_button.click()
    bar.show_unloaded("Not loaded")
    assert not bar.loading and bar.load_button.text() == "Load" and bar.state.text() == "Not loaded"


def test_a_worker_lost_while_the_next_load_is_planned_does_not_fail_that_load(
    qtbot: QtBot, tmp_path: Path, smollm2: Path, monkeypatch
) -> None:
    """The worker dies (its remote machine vanished while it freed the last model, say) while the
    next model's load is still being planned: that load never reached the dead worker, so it goes
    on, on a fresh one, and reports its own outcome."""
    import signal
    import threading

    import app.ui.engine.engine_link as engine_link

    planning = threading.Event()
    release = threading.Event()
    real_plan = engine_link.plan_local_load

    def held_plan(path: str):  # the real plan, held until the worker is dead
        planning.set()
        release.wait(30)
        return real_plan(path)

    tiny = write_tiny_gguf(tmp_path / "tiny.gguf")
    link = EngineLink()
    failures: list[str] = []
    link.load_failed.connect(failures.append)
    try:
        with qtbot.waitSignal(link.loaded, timeout=60_000):
            link.load(str(tiny))
        pid = getattr(link.controller.engine, "pid", None)
        assert pid is not None
        monkeypatch.setattr(engine_link, "plan_local_load", held_plan)
        link.load(str(smollm2))
        assert planning.wait(10)
        with qtbot.waitSignal(link.unloaded, timeout=30_000):
            import os
            os.kill(pid, signal.SIGKILL)
        assert failures == [] and link.loading
        with qtbot.waitSignal(link.loaded, timeout=60_000) as loaded:
            release.set()
        assert Path(loaded.args[0].path) == smollm2 and failures == []
    finally:
        release.set()
        link.shutdown()
