"""What an empty chat shows: how Hearth works, what model is ready, and where to get more."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.ui.theme import SPACE_L, SPACE_M, SPACE_S, SPACE_XL


class WelcomeState(QWidget):
    """A centred card for a new chat; its text depends on which models are installed.

    Signals:
        navigate(str): open another page ("catalog", "downloads").
        prompt_chosen(str): a suggested first message was clicked.
    """

    navigate = Signal(str)
    prompt_chosen = Signal(str)

    SUGGESTIONS = (
        "Explain what a GGUF file is, in two sentences.",
        "Write a Python function that reverses a string.",
        "Give me three ideas for a weekend project.",
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(SPACE_XL, SPACE_XL, SPACE_XL, SPACE_XL)
        outer.addStretch(1)
        card = QFrame()
        card.setObjectName("WelcomeCard")
        card.setMaximumWidth(620)
        layout = QVBoxLayout(card)
        layout.setContentsMargins(SPACE_XL, SPACE_XL, SPACE_XL, SPACE_XL)
        layout.setSpacing(SPACE_M)
        self.title = QLabel("Welcome to Hearth")
        self.title.setObjectName("WelcomeTitle")
        self.body = QLabel()
        self.body.setObjectName("WelcomeBody")
        self.body.setWordWrap(True)
        self.body.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.title)
        layout.addWidget(self.body)
        self.suggestions = QVBoxLayout()
        self.suggestions.setSpacing(SPACE_S)
        for text in self.SUGGESTIONS:
            button = QPushButton(text)
            button.setObjectName("Suggestion")
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.clicked.connect(lambda _=False, t=text: self.prompt_chosen.emit(t))
            self.suggestions.addWidget(button)
        layout.addLayout(self.suggestions)
        self.more = QLabel()
        self.more.setObjectName("Muted")
        self.more.setWordWrap(True)
        self.more.setText(
            "Bigger, smarter models are in the <b>Catalogue</b>, with a badge that says whether "
            "each fits this machine; <b>Downloads</b> shows their progress. Every chat is saved "
            "as you go."
        )
        layout.addSpacing(SPACE_S)
        layout.addWidget(self.more)
        buttons = QHBoxLayout()
        buttons.setSpacing(SPACE_S)
        catalogue = QPushButton("Browse the catalogue")
        catalogue.clicked.connect(lambda: self.navigate.emit("catalog"))
        downloads = QPushButton("Downloads")
        downloads.clicked.connect(lambda: self.navigate.emit("downloads"))
        buttons.addWidget(catalogue)
        buttons.addWidget(downloads)
        buttons.addStretch(1)
        layout.addSpacing(SPACE_L - SPACE_M)
        layout.addLayout(buttons)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card, 10)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)
        self.set_models([], None)

    def set_models(self, names: list[str], starter: str | None) -> None:
        """Explain the situation: the starter is ready, other models are, or none is yet."""
        if starter and starter in names:
            text = (
                f"Hearth runs language models on this computer, offline: nothing you type leaves it."
                f"<br><br><b>{starter}</b>, a tiny starter model, is installed and ready. It is "
                "quick but simple-minded: good for trying Hearth out. Type a message below, or "
                "pick one of these:"
            )
        elif names:
            text = (
                "Hearth runs language models on this computer, offline. Pick a model in the bar "
                "above and type a message below, or try one of these:"
            )
        else:
            text = (
                "Hearth runs language models on this computer, offline. No model is installed "
                "yet: run <code>hearth starter</code> for the tiny starter model, or browse the "
                "catalogue to download a bigger one (the Downloads page shows the progress)."
            )
        self.body.setText(text)
        for index in range(self.suggestions.count()):
            item = self.suggestions.itemAt(index)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.setVisible(bool(names))
