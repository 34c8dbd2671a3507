"""Where the user writes: Enter sends, Shift+Enter breaks the line, the box grows with the text."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.ui.theme import SPACE_M, SPACE_S, SPACE_XS

MAX_LINES = 8


class MessageEdit(QPlainTextEdit):
    """A plain text box that sends on Enter and grows from one line to eight.

    Signals:
        submitted(): Enter without Shift.
        escaped(): Esc (stop the reply, or cancel an edit).
    """

    submitted = Signal()
    escaped = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ComposerEdit")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setTabChangesFocus(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)
        self._fit()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.escaped.emit()
            return
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and not (event.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            self.submitted.emit()
            return
        super().keyPressEvent(event)

    def _fit(self, *_: object) -> None:
        line = self.fontMetrics().lineSpacing()
        lines = max(1, min(MAX_LINES, int(self.document().size().height())))
        margins = self.contentsMargins()
        frame = int(self.document().documentMargin() * 2) + margins.top() + margins.bottom()
        self.setFixedHeight(lines * line + frame + 4)
        policy = (Qt.ScrollBarPolicy.ScrollBarAsNeeded
                  if self.document().size().height() > MAX_LINES
                  else Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(policy)

    def sizeHint(self) -> QSize:
        return QSize(400, self.height())


class Composer(QFrame):
    """The message box with its Send / Stop button and an "editing" note.

    Signals:
        send_requested(str): the text to send (never empty).
        stop_requested(): Stop was clicked while a reply streams.
        escaped(): Esc in the message box.
    """

    send_requested = Signal(str)
    stop_requested = Signal()
    escaped = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Composer")
        self._generating = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(SPACE_M, SPACE_S, SPACE_S, SPACE_S)
        outer.setSpacing(SPACE_XS)
        self.editing_note = QLabel()
        self.editing_note.setObjectName("ComposerNote")
        self.editing_note.hide()
        outer.addWidget(self.editing_note)
        row = QHBoxLayout()
        row.setSpacing(SPACE_S)
        self.edit = MessageEdit()
        self.edit.setPlaceholderText("Message the model…  (Enter sends, Shift+Enter for a new line)")
        self.edit.submitted.connect(self._submit)
        self.edit.escaped.connect(self.escaped)
        self.button = QPushButton("Send")
        self.button.setObjectName("Primary")
        self.button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.button.setMinimumWidth(72)
        self.button.clicked.connect(self._clicked)
        row.addWidget(self.edit, 1)
        row.addWidget(self.button, 0, Qt.AlignmentFlag.AlignBottom)
        outer.addLayout(row)
        self.edit.textChanged.connect(self._update_button)
        self._update_button()

    @property
    def generating(self) -> bool:
        return self._generating

    def set_generating(self, generating: bool) -> None:
        self._generating = generating
        self.button.setText("Stop" if generating else "Send")
        self.button.setObjectName("Stop" if generating else "Primary")
        self.button.style().unpolish(self.button)
        self.button.style().polish(self.button)
        self._update_button()

    def text(self) -> str:
        return self.edit.toPlainText()

    def set_text(self, text: str) -> None:
        self.edit.setPlainText(text)
        cursor = self.edit.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        self.edit.setTextCursor(cursor)

    def show_editing(self, editing: bool) -> None:
        self.editing_note.setText("Editing an earlier message: sending replaces it and what "
                                  "followed.  Esc cancels.")
        self.editing_note.setVisible(editing)

    def _update_button(self) -> None:
        self.button.setEnabled(self._generating or bool(self.text().strip()))

    def _clicked(self) -> None:
        if self._generating:
            self.stop_requested.emit()
        else:
            self._submit()

    def _submit(self) -> None:
        text = self.text()
        if self._generating or not text.strip():
            return
        self.edit.clear()
        self.send_requested.emit(text)
