"""ModelProbe answers with signals from its own thread: a plan for a good file, an error for a bad one."""

from __future__ import annotations

import threading
from pathlib import Path

from pytestqt.qtbot import QtBot

from app.ui.engine.model_probe import ModelProbe, ProbeResult
from tests.engine.tiny_gguf import write_tiny_gguf


def test_probe_plans_off_the_gui_thread(qtbot: QtBot, tmp_path: Path) -> None:
    probe = ModelProbe()
    model = write_tiny_gguf(tmp_path / "tiny.gguf", name="Probe Me")
    threads: list[str] = []
    probe.probed.connect(lambda _: threads.append(threading.current_thread().name))
    with qtbot.waitSignal(probe.probed, timeout=10_000) as blocker:
        probe.probe(model, ctx=256)
    result: ProbeResult = blocker.args[0]
    assert result.meta.name == "Probe Me"
    assert result.settings.n_ctx == 256 and result.settings.path == str(model)
    assert str(result.plan).startswith("0/2 layers on GPU")
    assert threads == ["MainThread"]  # delivered to the GUI thread, queued from the probe's


def test_probe_reports_a_bad_file(qtbot: QtBot, tmp_path: Path) -> None:
    probe = ModelProbe()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + bytes(10))
    with qtbot.waitSignal(probe.failed, timeout=10_000) as blocker:
        probe.probe(bad)
    assert blocker.args[0] == str(bad)
    assert "incomplete" in blocker.args[1]
