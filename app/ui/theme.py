"""Light and dark themes: Fusion with Hearth's palettes, following the system colour scheme."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TypeVar

from PySide6.QtCore import QByteArray, QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette, QPixmap
from PySide6.QtWidgets import QApplication, QWidget

from app.paths import resource_path

W = TypeVar("W", bound=QWidget)

# Spacing scale used by every layout.
SPACE_XS, SPACE_S, SPACE_M, SPACE_L, SPACE_XL = 4, 8, 12, 16, 24


@dataclass(frozen=True)
class Theme:
    """One palette. Field names are the placeholders of resources/styles/hearth.qss."""

    name: str
    window: str
    rail: str
    surface: str
    surface_alt: str
    hover: str
    border: str
    text: str
    text_muted: str
    accent: str
    accent_soft: str
    accent_text: str
    good: str
    warn: str
    warn_soft: str
    bad: str
    code_bg: str

    @property
    def dark(self) -> bool:
        return self.name == "dark"


LIGHT = Theme(
    name="light", window="#f6f5f3", rail="#eceae6", surface="#ffffff", surface_alt="#faf9f7",
    hover="#e2dfda", border="#e3e0db", text="#1f1d1a", text_muted="#6b665f", accent="#d9480f",
    accent_soft="#fde3d3", accent_text="#ffffff", good="#2b8a3e", warn="#b7791f", warn_soft="#fff3d6",
    bad="#c92a2a", code_bg="#f3f1ee",
)
DARK = Theme(
    name="dark", window="#1b1a19", rail="#141312", surface="#242220", surface_alt="#292725",
    hover="#302d2a", border="#3a3632", text="#ece8e3", text_muted="#a39d95", accent="#ff8a4c",
    accent_soft="#4a2d1e", accent_text="#1b1a19", good="#69db7c", warn="#fcc419", warn_soft="#3d3216",
    bad="#ff6b6b", code_bg="#2e2b28",
)


THEME_CHOICES = ("system", "light", "dark")  # what the user may pick; "system" follows the desktop


def system_prefers_dark() -> bool:
    forced = os.environ.get("HEARTH_THEME", "").lower()
    if forced in ("light", "dark"):
        return forced == "dark"
    hints = QGuiApplication.styleHints()
    return bool(hints.colorScheme() == Qt.ColorScheme.Dark)


def _palette(theme: Theme) -> QPalette:
    p = QPalette()
    c = QColor
    roles = {
        QPalette.ColorRole.Window: theme.window,
        QPalette.ColorRole.WindowText: theme.text,
        QPalette.ColorRole.Base: theme.surface,
        QPalette.ColorRole.AlternateBase: theme.surface_alt,
        QPalette.ColorRole.Text: theme.text,
        QPalette.ColorRole.Button: theme.surface,
        QPalette.ColorRole.ButtonText: theme.text,
        QPalette.ColorRole.Highlight: theme.accent,
        QPalette.ColorRole.HighlightedText: theme.accent_text,
        QPalette.ColorRole.ToolTipBase: theme.surface,
        QPalette.ColorRole.ToolTipText: theme.text,
        QPalette.ColorRole.PlaceholderText: theme.text_muted,
        QPalette.ColorRole.Link: theme.accent,
        QPalette.ColorRole.Mid: theme.border,
        QPalette.ColorRole.Midlight: theme.hover,
    }
    for role, colour in roles.items():
        p.setColor(role, c(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, c(theme.text_muted))
    return p


@lru_cache(maxsize=4)
def _stylesheet(theme: Theme) -> str:
    text = resource_path("styles", "hearth.qss").read_text(encoding="utf-8")
    for key, value in asdict(theme).items():
        text = text.replace("{" + key + "}", str(value))
    return text


def named(widget: W, name: str) -> W:
    """Give a widget the object name that resources/styles/hearth.qss styles it by."""
    widget.setObjectName(name)
    return widget


def icon(name: str, colour: str) -> QIcon:
    """An SVG icon from resources/icons, its grey strokes tinted to ``colour``."""
    svg = resource_path("icons", f"{name}.svg").read_text(encoding="utf-8").replace("#888888", colour)
    pixmap = QPixmap()
    pixmap.loadFromData(QByteArray(svg.encode()), "SVG")
    return QIcon(pixmap)


class ThemeManager(QObject):
    """Applies the theme and re-applies it when the system switches light/dark.

    Signals:
        changed(Theme): the theme now in force; widgets that paint colours repaint.
    """

    changed = Signal(object)

    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self._app = app
        self.choice = "system"
        self.theme = DARK if system_prefers_dark() else LIGHT
        app.setStyle("Fusion")
        self._apply()
        app.styleHints().colorSchemeChanged.connect(self._on_scheme_changed)

    def set_choice(self, choice: str) -> None:
        """Use "light", "dark", or "system" (follow the desktop); anything else means "system"."""
        self.choice = choice if choice in THEME_CHOICES else "system"
        self._on_scheme_changed(Qt.ColorScheme.Unknown)

    def _on_scheme_changed(self, _scheme: Qt.ColorScheme) -> None:
        if self.choice == "system":
            theme = DARK if system_prefers_dark() else LIGHT
        else:
            theme = DARK if self.choice == "dark" else LIGHT
        if theme != self.theme:
            self.theme = theme
            self._apply()

    def _apply(self) -> None:
        self._app.setPalette(_palette(self.theme))
        self._app.setStyleSheet(_stylesheet(self.theme))
        self.changed.emit(self.theme)
