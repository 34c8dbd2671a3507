"""The banner above the conversation: what went wrong and what to do, and, when the model's prompt
template refused the chat, the button that reshapes the chat so the template accepts it."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from app.engine.chat_format import remedy_label


class Banner(QWidget):
    """Hidden until there is something to say; ``say`` replaces what it said before.

    Signals:
        remedy_chosen(str): the user pressed the offered remedy ("fold_system", "merge_turns", ...).
    """

    remedy_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("BannerBox")
        self.label = QLabel()
        self.label.setObjectName("Banner")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.remedy_button = QPushButton()
        self.remedy_button.setObjectName("RemedyButton")
        self.remedy_button.hide()
        self.remedy_button.clicked.connect(self._remedy_clicked)
        self.remedy: str | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.label)
        layout.addWidget(self.remedy_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.hide()

    def text(self) -> str:
        return self.label.text()

    def say(self, message: str, remedy: str | None = None) -> None:
        """Show ``message``; with ``remedy``, offer the button that applies it."""
        self.label.setText(message)
        self.remedy = remedy
        if remedy is not None:
            self.remedy_button.setText(remedy_label(remedy))
        self.remedy_button.setVisible(remedy is not None)
        self.show()

    def clear(self) -> None:
        self.hide()
        self.remedy_button.hide()
        self.remedy = None

    def _remedy_clicked(self) -> None:
        if self.remedy is not None:
            self.remedy_chosen.emit(self.remedy)
