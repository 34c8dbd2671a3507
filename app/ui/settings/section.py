"""The frame every Settings section shares: a title, a muted introduction, then the section's own rows."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.ui.theme import SPACE_M, SPACE_S, named


def section_layout(section: QWidget, title: str, intro: str) -> QVBoxLayout:
    """Lay ``section`` out as a Settings card headed by ``title`` and ``intro``; add its rows to the result."""
    layout = QVBoxLayout(section)
    layout.setContentsMargins(SPACE_M, SPACE_M, SPACE_M, SPACE_M)
    layout.setSpacing(SPACE_S)
    layout.addWidget(named(QLabel(title), "SectionTitle"))
    explanation = named(QLabel(intro), "Muted")
    explanation.setWordWrap(True)
    layout.addWidget(explanation)
    return layout


def status_label() -> QLabel:
    """A muted, wrapping, selectable line for a section's outcome (errors can be copied)."""
    label = named(QLabel(""), "Muted")
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def empty_state(text: str) -> QLabel:
    """The line a section's list shows while it is empty: what the list is for and how to add to it."""
    label = named(QLabel(text), "EmptyState")
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    return label


def list_rows(layout: QVBoxLayout, items: QWidget, empty: QLabel, buttons: Sequence[QWidget], status: QLabel) -> None:
    """A section's list (or, while it is empty, its empty-state line), the buttons acting on it, and the
    line saying how the last action went."""
    layout.addWidget(items)
    layout.addWidget(empty)
    row = QHBoxLayout()
    for button in buttons:
        row.addWidget(button)
    row.addStretch(1)
    layout.addLayout(row)
    layout.addWidget(status)
