"""The conversation sidebar's model (chats from the store, newest first) and its row painter."""

from __future__ import annotations

import time
from datetime import datetime
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.chats.records import Chat
from app.chats.store import ChatStore
from app.ui.theme import SPACE_M, SPACE_S, SPACE_XS, Theme

AnyIndex = QModelIndex | QPersistentModelIndex


class ChatListRole(IntEnum):
    CHAT = Qt.ItemDataRole.UserRole + 1
    CHAT_ID = Qt.ItemDataRole.UserRole + 2
    REPLY_STATE = Qt.ItemDataRole.UserRole + 3  # "interrupted", "streaming" or None


def when_label(stamp: float, now: float | None = None) -> str:
    """"10:42", "Yesterday", "Mon", or "12 Mar 2025": short, like a mail client."""
    now = time.time() if now is None else now
    try:
        then, today = datetime.fromtimestamp(stamp), datetime.fromtimestamp(now)
    except (OverflowError, OSError, ValueError):
        return ""  # a time the platform cannot show (the store hands out only sane ones)
    days = (today.date() - then.date()).days
    if days <= 0:
        return then.strftime("%H:%M")
    if days == 1:
        return "Yesterday"
    if days < 7:
        return then.strftime("%a")
    return f"{then.day} {then.strftime('%b %Y')}"


class ChatListModel(QAbstractListModel):
    """Chats from the store, newest first, optionally narrowed by a search."""

    def __init__(self, store: ChatStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._chats: list[Chat] = []
        self._states: dict[int, str] = {}
        self._query = ""
        self.refresh()

    @property
    def query(self) -> str:
        return self._query

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._chats)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._chats):
            return None
        chat = self._chats[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return chat.display_title
        if role == Qt.ItemDataRole.ToolTipRole:
            return chat.display_title + (f"\n{chat.model}" if chat.model else "")
        if role == ChatListRole.CHAT:
            return chat
        if role == ChatListRole.CHAT_ID:
            return chat.id
        if role == ChatListRole.REPLY_STATE:
            return self._states.get(chat.id)
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def set_query(self, query: str) -> None:
        self._query = query.strip()
        self.refresh()

    def refresh(self) -> None:
        """Re-read the store (after a new chat, a rename, a delete, a new message)."""
        chats = self._store.search(self._query) if self._query else self._store.list_chats()
        states = self._store.reply_states()
        self.beginResetModel()
        self._chats = chats
        self._states = states
        self.endResetModel()

    def row_of(self, chat_id: int) -> int | None:
        return next((row for row, chat in enumerate(self._chats) if chat.id == chat_id), None)

    def chat_at(self, row: int) -> Chat | None:
        return self._chats[row] if 0 <= row < len(self._chats) else None


class ChatListDelegate(QStyledItemDelegate):
    """Two lines per chat: the title, then when and with which model, in a rounded row."""

    def __init__(self, theme: Theme, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.theme = theme

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        metrics = QFontMetrics(option.font)
        return QSize(200, metrics.height() * 2 + SPACE_M + SPACE_XS * 2)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        chat: Chat | None = index.data(ChatListRole.CHAT)
        if chat is None:
            return
        rect: QRect = option.rect.adjusted(SPACE_XS, 2, -SPACE_XS, -2)
        state = option.state
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if state & QStyle.StateFlag.State_Selected:
            painter.setBrush(QColor(self.theme.accent_soft))
        elif state & QStyle.StateFlag.State_MouseOver:
            painter.setBrush(QColor(self.theme.hover))
        else:
            painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawRoundedRect(rect, 8, 8)
        inner = rect.adjusted(SPACE_M, SPACE_S - 2, -SPACE_M, -SPACE_S + 2)
        font = QFont(option.font)
        metrics = QFontMetrics(font)
        title_rect = QRect(inner.left(), inner.top(), inner.width(), metrics.height())
        painter.setFont(font)
        painter.setPen(QPen(QColor(self.theme.text)))
        painter.drawText(title_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         metrics.elidedText(chat.display_title, Qt.TextElideMode.ElideRight,
                                            inner.width()))
        small = QFont(font)
        small.setPointSizeF(font.pointSizeF() * 0.86)
        small_metrics = QFontMetrics(small)
        detail = when_label(chat.updated) + (f"  ·  {chat.model}" if chat.model else "")
        if index.data(ChatListRole.REPLY_STATE) == "interrupted":
            detail = "Interrupted reply  ·  " + detail
        detail_rect = QRect(inner.left(), title_rect.bottom() + 3, inner.width(), metrics.height())
        painter.setFont(small)
        painter.setPen(QPen(QColor(self.theme.text_muted)))
        painter.drawText(detail_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         small_metrics.elidedText(detail, Qt.TextElideMode.ElideRight, inner.width()))
        painter.restore()


