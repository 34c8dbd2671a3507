"""The window remembers its size and position, last page, splitter sizes and theme across a restart."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QApplication, QSplitter
from pytestqt.qtbot import QtBot

from app.ui.application import create_context
from app.ui.main_window import MainWindow
from app.ui.window_state import SETTINGS_FILE, WindowState


def _open(qapp: QApplication, qtbot: QtBot) -> MainWindow:
    """A brand-new window on a brand-new context, as a fresh start of the app builds it."""
    window = MainWindow(create_context(qapp))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_settings_survive_a_restart(qapp: QApplication, qtbot: QtBot, hearth_home: Path) -> None:
    first = _open(qapp, qtbot)
    assert first.size() == QSize(1280, 800)  # nothing saved yet: the default size
    assert first.current_page_key() == "chat"
    first.resize(1010, 640)
    first.move(37, 29)
    first.show_page("catalog")
    splitter = first.pages["catalog"].findChild(QSplitter)
    assert splitter is not None
    splitter.setSizes([520, 420])
    qapp.processEvents()
    saved_sizes = splitter.sizes()
    first.choose_theme("dark")
    assert first.context.theme.theme.dark
    position = first.pos()
    first.close()
    assert (hearth_home / "config" / SETTINGS_FILE).is_file()

    second = _open(qapp, qtbot)
    assert second.size() == QSize(1010, 640)
    assert second.pos() == position
    assert second.current_page_key() == "catalog"
    restored = second.pages["catalog"].findChild(QSplitter)
    assert restored is not None
    qtbot.waitUntil(lambda: abs(restored.sizes()[0] - saved_sizes[0]) <= 2, timeout=2000)
    assert all(abs(a - b) <= 2 for a, b in zip(restored.sizes(), saved_sizes, strict=True)), restored.sizes()
    assert second.context.theme.choice == "dark"
    assert second.context.theme.theme.dark
    assert second.theme_actions["dark"].isChecked()
    second.choose_theme("system")  # conftest sets HEARTH_THEME=light: "system" follows it
    assert not second.context.theme.theme.dark
    second.close()


def test_garbled_settings_fall_back_to_defaults(qapp: QApplication, qtbot: QtBot, hearth_home: Path) -> None:
    path = hearth_home / "config" / SETTINGS_FILE
    path.parent.mkdir(parents=True)
    path.write_text("[window]\nsize=not a size\nposition=@Point(a b)\nlast_page=no-such-page\n"
                    "[appearance]\ntheme=purple\n[splitters]\ncatalog\\0=a, b\n", encoding="utf-8")
    window = _open(qapp, qtbot)
    assert window.size() == QSize(1280, 800)
    assert window.current_page_key() == "chat"
    assert window.context.theme.choice == "system"
    window.show_page("catalog")  # unusable splitter sizes are ignored, not applied
    splitter = window.pages["catalog"].findChild(QSplitter)
    assert splitter is not None and all(s > 0 for s in splitter.sizes())
    window.close()


def test_window_state_reads_what_it_wrote(qapp: QApplication, hearth_home: Path) -> None:
    state = WindowState()
    state.save_last_page("downloads")
    state.save_theme_choice("light")
    state.sync()
    again = WindowState()  # a new QSettings object reads the file again
    assert again.last_page() == "downloads"
    assert again.theme_choice() == "light"
