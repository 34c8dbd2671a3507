"""The settings panel's "Loading this model" section: saved per model file, the model's trained context read off
the GUI thread, and the real engine loading SmolLM2 with what was chosen there (Reload applies a change)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.engine.load_preferences import KEY, LoadPreferences, load_preferences, model_key
from app.engine.offload import kv_cache_bytes_per_layer
from app.formats.gguf_meta import read_gguf_metadata
from app.paths import app_dirs
from app.ui.chat.settings_panel import ChatSettingsPanel
from app.ui.context import AppContext
from tests.ui.test_chat_page import install_starter, make_page


def test_the_section_saves_per_model_and_shows_the_trained_context(qtbot: QtBot, smollm2: Path) -> None:
    settings = app_dirs().settings_file
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"theme": "dark", KEY: {model_key(smollm2): {"flash_attention": "sometimes"}}}))
    panel = ChatSettingsPanel()
    qtbot.addWidget(panel)
    section = panel.load_section
    assert not section.context_spin.isEnabled()  # no model picked yet
    section.show_model(str(smollm2))
    assert "saved flash attention must be one of auto, on, off, not 'sometimes'" in section.note.text()
    assert section.flash_box.currentData() == "auto" and section.context_spin.text() == "Auto"
    qtbot.waitUntil(lambda: section.trained_label.text() == "Model's maximum: 8,192", timeout=10_000)
    assert section.context_spin.maximum() == 8192
    section.context_spin.setValue(1024)
    section.kv_box.setCurrentIndex(section.kv_box.findData("q8_0"))
    assert load_preferences(settings, smollm2) == (LoadPreferences(context_length=1024, kv_cache_type="q8_0"), ())
    assert json.loads(settings.read_text())["theme"] == "dark"
    assert section.note.text() == "Saved for this model: used the next time it loads."
    assert not section.reload_button.isVisible()  # this model is not the loaded one
    section.context_spin.setValue(100)  # shorter than any chat: the shortest allowed is kept
    assert section.context_spin.value() == 256 and load_preferences(settings, smollm2)[0].context_length == 256
    section.show_model("remote:lab/some-model")
    assert not section.kv_box.isEnabled() and "its server decides" in section.model_label.text()
    qtbot.waitUntil(lambda: section._gpu_reason is not None, timeout=60_000)  # the probe ends before the panel
    again = ChatSettingsPanel()
    qtbot.addWidget(again)
    again.load_section.show_model(str(smollm2))
    assert again.load_section.context_spin.value() == 256 and again.load_section.kv_box.currentData() == "q8_0"
    qtbot.waitUntil(lambda: again.load_section._gpu_reason is not None, timeout=60_000)


@pytest.mark.slow
def test_the_window_loads_with_the_chosen_context_and_kv_cache(
    qtbot: QtBot, context: AppContext, smollm2: Path
) -> None:
    path = install_starter(context, smollm2)
    page = make_page(qtbot, context)
    page.model_bar.settings_button.setChecked(True)
    section = page.settings.load_section
    assert section.path == str(path)
    section.context_spin.setValue(1024)
    section.kv_box.setCurrentIndex(section.kv_box.findData("q8_0"))
    page.load_model(str(path))
    qtbot.waitUntil(lambda: page.model_bar.loaded_path == str(path), timeout=90_000)
    assert page.engine.info is not None and page.engine.info.n_ctx == 1024
    meta = read_gguf_metadata(path)
    assert page.engine.plan is not None
    assert page.engine.plan.kv_bytes == kv_cache_bytes_per_layer(meta, 1024, "q8_0") * 30  # the q8_0 cache planned
    assert page.model_bar.state.text().startswith("Ready  ·  ")
    assert page.model_bar.state.text().endswith("1,024-token context")
    assert not section.reload_button.isVisible()
    section.context_spin.setValue(2048)  # the loaded model: Reload applies it
    assert section.reload_button.isVisible()
    assert section.note.text() == "Saved. This model is loaded: reload it to apply."
    section.reload_button.click()
    qtbot.waitUntil(lambda: page.engine.info is not None and page.engine.info.n_ctx == 2048, timeout=90_000)
    assert page.model_bar.state.text().endswith("2,048-token context") and not section.reload_button.isVisible()
    page.shutdown()
