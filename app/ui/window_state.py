"""What the window remembers between runs: size and position, the last page, splitter sizes, the theme."""

from __future__ import annotations

import os

from PySide6.QtCore import QPoint, QSettings, QSize, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMainWindow, QSplitter, QWidget

from app.paths import app_dirs

SIZE = "window/size"
POSITION = "window/position"
MAXIMISED = "window/maximised"
LAST_PAGE = "window/last_page"
THEME = "appearance/theme"
SETTINGS_FILE = "hearth-window.ini"


def open_settings() -> QSettings:
    """The settings store: the platform's own (registry, plist, ~/.config/Hearth/Hearth.conf), or an
    INI file under HEARTH_HOME when that is set (portable installs, tests)."""
    if os.environ.get("HEARTH_HOME"):
        path = app_dirs().config / SETTINGS_FILE
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings("Hearth", "Hearth")


def _splitter_key(page_key: str, index: int) -> str:
    return f"splitters/{page_key}/{index}"


def _int_list(value: object) -> list[int]:
    """QSettings hands lists back as lists of str (INI) or int (native); a single item as a scalar."""
    items = value if isinstance(value, (list, tuple)) else [value]
    try:
        return [int(str(v)) for v in items]
    except (TypeError, ValueError):
        return []


class WindowState:
    """Saves and restores a main window's look; every read tolerates a missing or garbled value."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self.settings = settings if settings is not None else open_settings()

    # -- window -------------------------------------------------------------------
    def restore_window(self, window: QMainWindow) -> bool:
        """Size, position and maximised state as last saved (False when there was nothing to restore).

        The size is taken as saved (the window's minimum still applies); the position only when its
        top-left corner is on one of today's screens, so a window last seen on an unplugged monitor
        does not open out of reach.
        """
        size, pos = self.settings.value(SIZE), self.settings.value(POSITION)
        if not isinstance(size, QSize) or not size.isValid() or size.isEmpty():
            return False
        window.resize(size)
        if isinstance(pos, QPoint) and any(s.availableGeometry().contains(pos) for s in QGuiApplication.screens()):
            window.move(pos)
        if str(self.settings.value(MAXIMISED, "false")).lower() == "true":
            window.setWindowState(window.windowState() | Qt.WindowState.WindowMaximized)
        return True

    def save_window(self, window: QMainWindow) -> None:
        maximised = window.isMaximized()
        geometry = window.normalGeometry() if maximised else window.geometry()
        self.settings.setValue(SIZE, geometry.size())
        self.settings.setValue(POSITION, window.pos() if not maximised else geometry.topLeft())
        self.settings.setValue(MAXIMISED, maximised)

    # -- page, theme ----------------------------------------------------------------
    def last_page(self) -> str | None:
        value = self.settings.value(LAST_PAGE)
        return value if isinstance(value, str) and value else None

    def save_last_page(self, key: str | None) -> None:
        if key:
            self.settings.setValue(LAST_PAGE, key)

    def theme_choice(self) -> str:
        value = self.settings.value(THEME)
        return value if isinstance(value, str) else "system"

    def save_theme_choice(self, choice: str) -> None:
        self.settings.setValue(THEME, choice)
        self.settings.sync()

    # -- splitters ------------------------------------------------------------------
    @staticmethod
    def _splitters(page: QWidget) -> list[QSplitter]:
        return page.findChildren(QSplitter)

    def restore_splitters(self, page_key: str, page: QWidget) -> None:
        for index, splitter in enumerate(self._splitters(page)):
            sizes = _int_list(self.settings.value(_splitter_key(page_key, index)))
            if len(sizes) == splitter.count() and all(s >= 0 for s in sizes) and any(sizes):
                splitter.setSizes(sizes)

    def save_splitters(self, page_key: str, page: QWidget) -> None:
        for index, splitter in enumerate(self._splitters(page)):
            self.settings.setValue(_splitter_key(page_key, index), [int(s) for s in splitter.sizes()])

    def sync(self) -> None:
        self.settings.sync()
