"""The conversation as a Qt list model: a window over a chat's messages, growing upward on demand."""

from __future__ import annotations

import dataclasses
from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from app.chats.records import StoredMessage

AnyIndex = QModelIndex | QPersistentModelIndex
PAGE = 120


class MessageRole(IntEnum):
    MESSAGE = Qt.ItemDataRole.UserRole + 1
    ROLE = Qt.ItemDataRole.UserRole + 2
    STATUS = Qt.ItemDataRole.UserRole + 3
    LIVE = Qt.ItemDataRole.UserRole + 4
    LAST_REPLY = Qt.ItemDataRole.UserRole + 5


class MessageListModel(QAbstractListModel):
    """Rows are the newest ``PAGE`` messages at first; ``load_earlier`` prepends older ones.

    A long chat opens at once and scrolls smoothly: only the rows shown were ever laid out.
    The streaming reply is the last row; ``update_message`` replaces it as it grows.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._all: list[StoredMessage] = []
        self._first = 0
        self.live_id: int | None = None

    # -- Qt interface -----------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._all) - self._first

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= self.rowCount():
            return None
        message = self._all[self._first + index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return message.content if role == Qt.ItemDataRole.DisplayRole else None
        if role == MessageRole.MESSAGE:
            return message
        if role == MessageRole.ROLE:
            return message.role
        if role == MessageRole.STATUS:
            return message.status
        if role == MessageRole.LIVE:
            return message.id == self.live_id
        if role == MessageRole.LAST_REPLY:
            return message.role == "assistant" and self._first + index.row() == len(self._all) - 1
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled

    # -- changes ----------------------------------------------------------------------------

    def set_messages(self, messages: list[StoredMessage]) -> None:
        self.beginResetModel()
        self._all = list(messages)
        self._first = max(0, len(self._all) - PAGE)
        self.live_id = None
        self.endResetModel()

    def has_earlier(self) -> bool:
        return self._first > 0

    def load_earlier(self, count: int = PAGE) -> int:
        """Show up to ``count`` older messages above the first row; returns how many."""
        count = min(count, self._first)
        if count:
            self.beginInsertRows(QModelIndex(), 0, count - 1)
            self._first -= count
            self.endInsertRows()
        return count

    def messages(self) -> list[StoredMessage]:
        """Every message of the chat, shown or not."""
        return list(self._all)

    def append(self, message: StoredMessage) -> None:
        row = self.rowCount()
        self.beginInsertRows(QModelIndex(), row, row)
        self._all.append(message)
        self.endInsertRows()
        if row > 0:
            # The row above may have stopped being the last reply (its Regenerate action goes).
            self.dataChanged.emit(self.index(row - 1), self.index(row - 1))

    def update_message(self, message_id: int, **changes: Any) -> None:
        """Replace fields of one message (content as it streams, status when it ends)."""
        for position in range(len(self._all) - 1, -1, -1):
            if self._all[position].id == message_id:
                self._all[position] = dataclasses.replace(self._all[position], **changes)
                row = position - self._first
                if row >= 0:
                    self.dataChanged.emit(self.index(row), self.index(row))
                return

    def remove_from(self, position: int) -> None:
        """Drop messages whose chat position is ``position`` or later."""
        keep = [m for m in self._all if m.position < position]
        if len(keep) == len(self._all):
            return
        first_row = max(0, len(keep) - self._first)
        if len(keep) < self._first:
            self.set_messages(keep)
            return
        self.beginRemoveRows(QModelIndex(), first_row, self.rowCount() - 1)
        self._all = keep
        self.endRemoveRows()
        if self.rowCount():
            last = self.index(self.rowCount() - 1)
            self.dataChanged.emit(last, last)

    def row_of(self, message_id: int) -> int | None:
        for row in range(self.rowCount()):
            if self._all[self._first + row].id == message_id:
                return row
        return None
