"""Settings > API server and Remote endpoints with real widgets offscreen, a real server and real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from app.remote.endpoints import EndpointStore
from app.server.engine_bridge import EngineBridge
from app.server.runner import BackgroundServer, ServerSettings
from app.ui.context import AppContext
from app.ui.settings.page import SettingsPage


def make_page(qtbot: QtBot, context: AppContext) -> SettingsPage:
    page = SettingsPage(context)
    qtbot.addWidget(page)
    page.show()
    return page


def test_the_switch_serves_on_loopback_logs_requests_and_copies_the_address(
        qtbot: QtBot, qapp: QApplication, context: AppContext) -> None:
    page = make_page(qtbot, context)
    section = page.api_server
    section.port.setValue(0)
    section.switch.click()
    qtbot.waitUntil(lambda: section.address.text().startswith("http://127.0.0.1:"), timeout=30_000)
    url = section.address.text()
    assert not section.host.isEnabled()  # no edits while serving
    assert httpx.get(f"{url}/models").json() == {"object": "list", "data": []}
    qtbot.waitUntil(lambda: "GET /v1/models 200" in section.log.toPlainText(), timeout=5_000)
    section.copy_button.click()
    assert QApplication.clipboard().text() == url
    section.switch.click()
    qtbot.waitUntil(lambda: section.address.text() == "Not serving", timeout=30_000)
    assert not section.service.running and section.host.isEnabled()
    page.shutdown()
    later = make_page(qtbot, context)  # the next run remembers the choices
    assert (later.api_server.host.text(), later.api_server.port.value()) == ("127.0.0.1", 0)


def test_other_addresses_without_a_key_ask_first(qtbot: QtBot, context: AppContext) -> None:
    page = make_page(qtbot, context)
    section = page.api_server
    section.host.setText("0.0.0.0")
    section.switch.click()
    box = section.confirm
    assert isinstance(box, QMessageBox) and box.isVisible() and "API key" in box.text()
    box.button(QMessageBox.StandardButton.No).click()
    assert not section.switch.isChecked() and not section.service.running and section.confirm is None
    page.shutdown()


def test_an_added_endpoint_lists_its_models_and_keeps_its_key_private(
        qtbot: QtBot, context: AppContext, smollm2: Path, tmp_path: Path) -> None:
    bridge = EngineBridge(models_dir=tmp_path)
    bridge.add_model(str(smollm2))
    server = BackgroundServer(bridge, ServerSettings(port=0, api_key="sk-private")).start()
    try:
        page = make_page(qtbot, context)
        section = page.endpoints
        section.name.setText("box")
        section.url.setText(server.url)
        section.api_key.setText("wrong")
        section.add_button.click()
        qtbot.waitUntil(lambda: "401" in section.status.text(), timeout=20_000)
        assert EndpointStore().load() == []
        assert section.empty_label.isVisible() and not section.list.isVisible()  # nothing added yet
        assert "No remote endpoints yet" in section.empty_label.text()
        assert "press Add" in section.empty_label.text()
        section.api_key.setText("sk-private")
        with qtbot.waitSignal(context.events.installed_changed, timeout=20_000):
            section.add_button.click()
        saved = EndpointStore().load()
        assert [(e.name, e.models, e.api_key) for e in saved] == [("box", ("SmolLM2-135M-Instruct.Q4_1",),
                                                                    "sk-private")]
        assert section.list.isVisible() and not section.empty_label.isVisible()
        shown = section.list.item(0).text()
        assert "1 model" in shown and "key set" in shown and "sk-private" not in shown
        section.list.setCurrentRow(0)
        with qtbot.waitSignal(section.changed):
            section.remove_selected()
        assert EndpointStore().load() == []
        assert section.empty_label.isVisible() and not section.list.isVisible()
        page.shutdown()
    finally:
        server.stop()


def test_an_empty_endpoint_list_says_what_it_is_for_and_how_to_add_one(qtbot: QtBot, context: AppContext) -> None:
    from app.remote.endpoints import Endpoint

    page = make_page(qtbot, context)
    section = page.endpoints
    assert section.empty_label.isVisible() and not section.list.isVisible()
    text = section.empty_label.text()
    assert "No remote endpoints yet" in text and "chat with a server's models" in text and "press Add" in text
    EndpointStore().add(Endpoint("studio", "http://studio.local:8080/v1", models=("qwen",)))
    section.show_endpoints()
    assert section.list.isVisible() and not section.empty_label.isVisible() and section.list.count() == 1
    page.shutdown()
