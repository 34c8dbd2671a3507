"""The CPU threads setting in the chat settings panel, and the model bar's tooltip saying what was chosen and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.engine.thread_setting import load_thread_setting
from app.paths import app_dirs
from app.ui.chat.model_bar import ModelBar
from app.ui.chat.settings_panel import ChatSettingsPanel
from app.ui.context import AppContext
from tests.ui.test_chat_page import install_starter, make_page


def test_threads_setting_defaults_to_auto_and_saves_beside_other_settings(qtbot: QtBot, hearth_home: Path) -> None:
    settings_file = app_dirs().settings_file
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps({"theme": "dark"}), encoding="utf-8")
    panel = ChatSettingsPanel()
    qtbot.addWidget(panel)
    assert panel.threads_box.currentData() == "auto"
    with qtbot.waitSignal(panel.threads_changed) as signal:
        panel.threads_box.setCurrentIndex(panel.threads_box.findData(1))
    assert signal.args == [1]
    assert json.loads(settings_file.read_text(encoding="utf-8")) == {"theme": "dark", "threads": 1}
    assert load_thread_setting(settings_file) == 1
    again = ChatSettingsPanel()
    qtbot.addWidget(again)
    assert again.threads_box.currentData() == 1
    again.threads_box.setCurrentIndex(0)
    assert load_thread_setting(settings_file) == "auto"


def test_a_damaged_settings_file_is_left_alone_and_explained(qtbot: QtBot, hearth_home: Path) -> None:
    settings_file = app_dirs().settings_file
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    settings_file.write_text("{not json", encoding="utf-8")
    panel = ChatSettingsPanel()
    qtbot.addWidget(panel)
    assert panel.threads_box.currentData() == "auto"  # unreadable: auto, and loading still works
    panel.threads_box.setCurrentIndex(panel.threads_box.findData(1))
    assert panel.threads_note.text().startswith("Not saved: cannot read the settings file")
    assert settings_file.read_text(encoding="utf-8") == "{not json"


def test_model_bar_tooltip_says_what_it_chose_and_why(qtbot: QtBot, context: AppContext) -> None:
    bar = ModelBar(context.theme.theme)
    qtbot.addWidget(bar)
    bar.show_loaded("/m.gguf", "Ready  ·  CPU", "CPU: 2 threads (auto: 2 physical cores, other programs idle)")
    assert bar.state.toolTip() == "Ready  ·  CPU\nCPU: 2 threads (auto: 2 physical cores, other programs idle)"
    bar.show_threads("CPU: 1 thread (auto: 1 thread measured 80% faster per token than 2)")
    assert bar.state.toolTip().endswith("1 thread measured 80% faster per token than 2)")
    bar.show_unloaded()
    bar.show_threads("CPU: 2 threads (auto: ...)")  # a late report after unloading changes nothing
    assert "CPU:" not in bar.state.toolTip()


@pytest.mark.slow
def test_a_fixed_setting_reaches_the_real_engine_and_the_tooltip(
    qtbot: QtBot, context: AppContext, smollm2: Path
) -> None:
    path = install_starter(context, smollm2)
    page = make_page(qtbot, context)
    page.settings.threads_box.setCurrentIndex(page.settings.threads_box.findData(1))
    page.load_model(str(path))
    qtbot.waitUntil(lambda: page.model_bar.loaded_path == str(path), timeout=90_000)
    assert page.model_bar.state.toolTip().endswith("CPU: 1 thread (fixed in settings)")
    page.settings.threads_box.setCurrentIndex(0)
    page.load_model(str(path))
    qtbot.waitUntil(lambda: "(auto: " in page.model_bar.state.toolTip(), timeout=90_000)
    page.shutdown()
