"""The main window: a navigation rail on the left and one page at a time beside it."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QMainWindow,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.context import AppContext
from app.ui.theme import SPACE_M, SPACE_S, Theme, icon, named


@dataclass(frozen=True)
class PageSpec:
    """A page of the rail: its key, label, icon, and the class that builds it."""

    key: str
    label: str
    icon: str
    module: str
    cls: str


# Rail order. A page whose module is not part of this build yet is left out.
PAGES = (
    PageSpec("chat", "Chat", "chat", "app.ui.chat.page", "ChatPage"),
    PageSpec("catalog", "Catalogue", "catalog", "app.ui.catalog.page", "CatalogPage"),
    PageSpec("downloads", "Downloads", "downloads", "app.ui.downloads.page", "DownloadsPage"),
    PageSpec("settings", "Settings", "settings", "app.ui.settings.page", "SettingsPage"),
)


def _module_exists(name: str) -> bool:
    """Whether a page module is part of this build (its package may be missing too)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


class MainWindow(QMainWindow):
    """Rail plus stacked pages; pages talk to each other only through ``context.events``."""

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context
        self.setWindowTitle("Hearth")
        self.setWindowIcon(icon("hearth", "#888888"))
        self.resize(1280, 800)
        self.setMinimumSize(900, 560)

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)

        self.rail = named(QWidget(), "NavRail")
        self.rail.setFixedWidth(84)
        rail_layout = QVBoxLayout(self.rail)
        rail_layout.setContentsMargins(SPACE_S, SPACE_M, SPACE_S, SPACE_M)
        rail_layout.setSpacing(SPACE_S)
        self.stack = QStackedWidget()
        self.buttons = QButtonGroup(self)
        self.buttons.setExclusive(True)
        self.pages: dict[str, QWidget] = {}
        self._specs: dict[str, PageSpec] = {}

        for spec in PAGES:
            if not _module_exists(spec.module):
                continue
            page_cls = getattr(importlib.import_module(spec.module), spec.cls)
            page: QWidget = page_cls(context)
            self.pages[spec.key] = page
            self._specs[spec.key] = spec
            self.stack.addWidget(page)
            button = named(QToolButton(), "NavButton")
            button.setText(spec.label)
            button.setCheckable(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setIconSize(QSize(24, 24))
            button.setFixedSize(68, 60)
            button.setProperty("page", spec.key)
            button.clicked.connect(lambda _=False, key=spec.key: self.show_page(key))
            self.buttons.addButton(button)
            rail_layout.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        rail_layout.addStretch(1)

        layout.addWidget(self.rail)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        context.events.navigate.connect(self.show_page)
        context.events.status_message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        context.theme.changed.connect(self._retint)
        self._retint(context.theme.theme)
        for number, spec in enumerate(self._specs.values(), start=1):
            QShortcut(QKeySequence(f"Ctrl+{number}"), self, lambda key=spec.key: self.show_page(key))
        if self.pages:
            self.show_page(next(iter(self.pages)))

    def show_page(self, key: str) -> None:
        page = self.pages.get(key)
        if page is None:
            return
        self.stack.setCurrentWidget(page)
        for button in self.buttons.buttons():
            button.setChecked(button.property("page") == key)

    def current_page_key(self) -> str | None:
        current = self.stack.currentWidget()
        return next((k for k, p in self.pages.items() if p is current), None)

    def _retint(self, theme: Theme) -> None:
        for button in self.buttons.buttons():
            spec = self._specs[button.property("page")]
            button.setIcon(icon(spec.icon, theme.text))

    def closeEvent(self, event: QCloseEvent) -> None:
        # Pages with running work (downloads, a model worker) stop it cleanly.
        for page in self.pages.values():
            shutdown = getattr(page, "shutdown", None)
            if callable(shutdown):
                shutdown()
        super().closeEvent(event)
