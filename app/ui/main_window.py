"""The main window: a navigation rail on the left and one page at a time beside it."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QPaintEvent, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QMainWindow,
    QMenu,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.about import show_about
from app.ui.context import AppContext
from app.ui.theme import SPACE_M, SPACE_S, THEME_CHOICES, Theme, icon, named
from app.ui.window_state import WindowState


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
    """Rail plus stacked pages; pages talk to each other only through ``context.events``.

    Signals:
        first_painted(): the window has been painted once; the other pages are built next.
    """

    first_painted = Signal()

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context
        self.setWindowTitle("Hearth")
        self.setWindowIcon(icon("hearth", "#888888"))
        self.setMinimumSize(900, 560)
        self.window_state = WindowState()
        context.theme.set_choice(self.window_state.theme_choice())
        if not self.window_state.restore_window(self):
            self.resize(1280, 800)

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
        self.pages: dict[str, QWidget] = {}  # pages built so far
        self._specs: dict[str, PageSpec] = {}
        self._slots: dict[str, QWidget] = {}  # a stand-in per page until it is built

        for spec in PAGES:
            if not _module_exists(spec.module):
                continue
            self._specs[spec.key] = spec
            self._slots[spec.key] = QWidget()
            self.stack.addWidget(self._slots[spec.key])
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
        self.theme_button = self._theme_button()
        rail_layout.addWidget(self.theme_button, 0, Qt.AlignmentFlag.AlignHCenter)
        self.about_button = named(QToolButton(), "NavButton")
        self.about_button.setText("About")
        self.about_button.setFixedSize(68, 32)
        self.about_button.setToolTip("Version, llama.cpp backend, and where Hearth keeps your data")
        self.about_button.clicked.connect(lambda: show_about(self, context.dirs))
        rail_layout.addWidget(self.about_button, 0, Qt.AlignmentFlag.AlignHCenter)

        layout.addWidget(self.rail)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        context.events.navigate.connect(self.show_page)
        context.events.status_message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        context.theme.changed.connect(self._retint)
        self._retint(context.theme.theme)
        for number, spec in enumerate(self._specs.values(), start=1):
            QShortcut(QKeySequence(f"Ctrl+{number}"), self, lambda key=spec.key: self.show_page(key))
        if self._specs:
            # The last page used (else the first) now; the others right after the window is on
            # screen, so that the window appears without waiting for every page's imports and set-up.
            last = self.window_state.last_page()
            self.show_page(last if last in self._specs else next(iter(self._specs)))
        self._painted = False

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.first_painted.emit()
            QTimer.singleShot(0, self.build_all_pages)

    def build_page(self, key: str) -> QWidget | None:
        """The page for ``key``, built on first use; None for a page this build lacks."""
        if key in self.pages:
            return self.pages[key]
        spec = self._specs.get(key)
        if spec is None:
            return None
        page: QWidget = getattr(importlib.import_module(spec.module), spec.cls)(self.context)
        slot = self._slots.pop(key)
        index = self.stack.indexOf(slot)
        current = self.stack.currentWidget() is slot
        self.stack.insertWidget(index, page)
        self.stack.removeWidget(slot)
        slot.deleteLater()
        if current:
            self.stack.setCurrentWidget(page)
        self.pages[key] = page
        # Splitter sizes once the page has its real size (sizes set before layout are redistributed).
        QTimer.singleShot(0, page, lambda: self.window_state.restore_splitters(key, page))
        return page

    def build_all_pages(self) -> None:
        for key in self._specs:
            self.build_page(key)

    def show_page(self, key: str) -> None:
        page = self.build_page(key)
        if page is None:
            return
        self.stack.setCurrentWidget(page)
        for button in self.buttons.buttons():
            button.setChecked(button.property("page") == key)

    def current_page_key(self) -> str | None:
        current = self.stack.currentWidget()
        return next((k for k, p in self.pages.items() if p is current), None)

    def _theme_button(self) -> QToolButton:
        """The rail's theme menu: follow the system, or always light or dark (remembered)."""
        button = named(QToolButton(), "NavButton")
        button.setText("Theme")
        button.setFixedSize(68, 32)
        button.setToolTip("Light, dark, or follow the system")
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(button)
        group = QActionGroup(menu)
        self.theme_actions: dict[str, QAction] = {}
        for choice in THEME_CHOICES:
            action = menu.addAction("Follow the system" if choice == "system" else choice.capitalize())
            action.setCheckable(True)
            action.setChecked(choice == self.context.theme.choice)
            action.triggered.connect(lambda _=False, c=choice: self.choose_theme(c))
            group.addAction(action)
            self.theme_actions[choice] = action
        button.setMenu(menu)
        return button

    def choose_theme(self, choice: str) -> None:
        """Apply and remember a theme choice ("system", "light" or "dark")."""
        self.context.theme.set_choice(choice)
        self.theme_actions[self.context.theme.choice].setChecked(True)
        self.window_state.save_theme_choice(self.context.theme.choice)

    def save_state(self) -> None:
        """Remember size and position, the page in view and splitter sizes for the next start."""
        self.window_state.save_window(self)
        self.window_state.save_last_page(self.current_page_key())
        for key, page in self.pages.items():
            self.window_state.save_splitters(key, page)
        self.window_state.sync()

    def _retint(self, theme: Theme) -> None:
        for button in self.buttons.buttons():
            spec = self._specs[button.property("page")]
            button.setIcon(icon(spec.icon, theme.text))

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_state()
        # Pages with running work (downloads, a model worker) stop it cleanly.
        for page in list(self.pages.values()):
            shutdown = getattr(page, "shutdown", None)
            if callable(shutdown):
                shutdown()
        super().closeEvent(event)
