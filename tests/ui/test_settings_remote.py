"""Settings › Remote machines with real widgets offscreen: the saved list, and a test against real servers."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.engine.rpc import active_remote_machines
from app.ui.context import AppContext
from app.ui.main_window import MainWindow
from app.ui.settings.page import SettingsPage
from tests.engine.rpc_servers import free_port, start_rpc_server


def make_page(qtbot: QtBot, context: AppContext) -> SettingsPage:
    page = SettingsPage(context)
    qtbot.addWidget(page)
    return page


def test_the_settings_page_is_in_the_rail(qtbot: QtBot, context: AppContext) -> None:
    window = MainWindow(context)
    qtbot.addWidget(window)
    window.show_page("settings")
    assert isinstance(window.pages["settings"], SettingsPage)


def test_added_machines_are_kept_in_the_users_settings(qtbot: QtBot, context: AppContext) -> None:
    page = make_page(qtbot, context)
    section = page.remote_machines
    section.address.setText("studio:50052")
    section.add_button.click()
    section.address.setText("10.0.0.7")  # the default port is added
    section.add_button.click()
    section.address.setText("studio:http")
    section.add_button.click()
    assert "port must be a number" in section.status.text()
    assert section.status.property("error") is True
    assert section.endpoints() == ["studio:50052", "10.0.0.7:50052"]
    saved = json.loads(context.dirs.settings_file.read_text())
    assert saved["remote_machines"] == {"endpoints": ["studio:50052", "10.0.0.7:50052"], "enabled": True}
    assert active_remote_machines(context.dirs.settings_file) == ("studio:50052", "10.0.0.7:50052")
    section.enabled.setChecked(False)
    assert active_remote_machines(context.dirs.settings_file) == ()
    # A fresh page (the next start of the app) shows the same list.
    again_page = make_page(qtbot, context)
    again = again_page.remote_machines
    assert again.endpoints() == ["studio:50052", "10.0.0.7:50052"] and not again.enabled.isChecked()
    section.list.item(0).setSelected(True)
    section.remove_button.click()
    assert section.endpoints() == ["10.0.0.7:50052"]


def test_an_empty_list_says_what_remote_machines_are_for_and_how_to_add_one(qtbot: QtBot,
                                                                            context: AppContext) -> None:
    page = make_page(qtbot, context)
    page.show()
    section = page.remote_machines
    assert section.empty_label.isVisible() and not section.list.isVisible()
    text = section.empty_label.text()
    assert "No remote machines yet" in text and "too big for this computer" in text
    assert "hearth rpc-server" in text and "press Add" in text
    section.address.setText("studio:50052")
    section.add_button.click()
    assert section.list.isVisible() and not section.empty_label.isVisible()
    section.list.item(0).setSelected(True)
    section.remove_button.click()
    assert section.empty_label.isVisible() and not section.list.isVisible()


@pytest.mark.slow
def test_test_connection_shows_devices_and_free_memory_without_blocking(
    qtbot: QtBot, context: AppContext, qapp: QApplication
) -> None:
    server = start_rpc_server()
    closed = free_port()
    try:
        page = make_page(qtbot, context)
        section = page.remote_machines
        for address in (server.endpoint, f"127.0.0.1:{closed}"):
            section.address.setText(address)
            section.add_button.click()
        started = time.perf_counter()
        with qtbot.waitSignal(section.tester.finished, timeout=20000):
            section.test_button.click()
            assert time.perf_counter() - started < 0.5  # the click returned at once
            assert "testing" in section.list.item(0).text()
        good, bad = section.list.item(0).text(), section.list.item(1).text()
        assert "✓ device 0:" in good and "GB free of" in good
        assert f"127.0.0.1:{closed}  ·  ✗ nothing is listening there" in bad
        assert f"Could not use 127.0.0.1:{closed}" in section.status.text()
    finally:
        server.stop()
    with socket.socket() as s:  # nothing left listening on the closed port
        assert s.connect_ex(("127.0.0.1", closed)) != 0


@pytest.mark.slow
def test_the_window_loads_over_the_saved_machines_and_names_one_that_is_down(
    qtbot: QtBot, context: AppContext, smollm2: Path
) -> None:
    from app.engine.rpc import RemoteSettings, parse_endpoints, save_remote_settings
    from app.ui.engine.engine_link import EngineLink, describe_load

    first, second = start_rpc_server(), start_rpc_server()
    link = EngineLink()
    try:
        save_remote_settings(context.dirs.settings_file,
                             RemoteSettings(parse_endpoints([first.endpoint, second.endpoint])))
        with qtbot.waitSignal(link.loaded, timeout=120000) as loaded:
            link.load(str(smollm2))
        info = loaded.args[0]
        assert info.split.startswith(f"30 layers: 16 on {first.endpoint} (device 0), 14 on {second.endpoint}")
        assert link.plan is not None
        assert f"on {first.endpoint} (device 0)" in describe_load(info, link.plan)
        link.unload()
        second.stop()
        with qtbot.waitSignal(link.load_failed, timeout=60000) as failed:
            link.load(str(smollm2))
        assert failed.args[0].startswith(f"{second.endpoint}: nothing is listening there")
    finally:
        link.shutdown()
        first.stop()
        second.stop()
