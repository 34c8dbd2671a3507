"""The conversation list beside the chat: search, new chat, rename in place, delete with undo."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.chats.store import ChatStore, DeletedChat
from app.ui.chat.chat_list import ChatListDelegate, ChatListModel, ChatListRole
from app.ui.theme import SPACE_M, SPACE_S, Theme, icon

AnyIndex = QModelIndex | QPersistentModelIndex
UNDO_MS = 15_000  # how long "Undo" stays offered after a delete


class EditableChatListModel(ChatListModel):
    """The chat list, with titles editable in place (F2 or double-click renames)."""

    renamed = Signal(int, str)

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        flags = super().flags(index)
        return flags | Qt.ItemFlag.ItemIsEditable if index.isValid() else flags

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.EditRole and index.isValid():
            chat = self.chat_at(index.row())
            return chat.title if chat else None
        return super().data(index, role)

    def setData(self, index: AnyIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        chat = self.chat_at(index.row()) if index.isValid() else None
        if chat is None or role != Qt.ItemDataRole.EditRole or not str(value).strip():
            return False
        self._store.rename_chat(chat.id, str(value))
        self.refresh_row(index.row())
        self.renamed.emit(chat.id, str(value).strip())
        return True

    def refresh_row(self, row: int) -> None:
        chat = self.chat_at(row)
        if chat is None:
            return
        self._chats[row] = self._store.chat(chat.id)
        self.dataChanged.emit(self.index(row), self.index(row))


class ChatListView(QListView):
    """The list itself; Delete asks to delete the current chat.

    Signals:
        delete_requested(int): chat id.
    """

    delete_requested = Signal(int)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Delete and self.currentIndex().isValid():
            self.delete_requested.emit(int(self.currentIndex().data(ChatListRole.CHAT_ID)))
            return
        super().keyPressEvent(event)


class Sidebar(QFrame):
    """Search box, New chat button, and the chats, newest first.

    Signals:
        chat_selected(int): the user opened a chat.
        new_chat_requested(): New chat was clicked.
        delete_requested(int): the user asked to delete a chat (the page calls ``delete_chat``).
        chat_restored(int): Undo put a deleted chat back.
    """

    chat_selected = Signal(int)
    new_chat_requested = Signal()
    delete_requested = Signal(int)
    chat_restored = Signal(int)

    def __init__(self, store: ChatStore, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ChatSidebar")
        self.setFixedWidth(260)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(SPACE_M, SPACE_M, SPACE_S, SPACE_M)
        layout.setSpacing(SPACE_S)
        self.new_button = QPushButton("New chat")
        self.new_button.setObjectName("NewChat")
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_button.clicked.connect(self.new_chat_requested)
        self.search = QLineEdit()
        self.search.setObjectName("SearchBox")
        self.search.setPlaceholderText("Search chats")
        self.search.setClearButtonEnabled(True)
        self.search.addAction(icon("search", theme.text_muted), QLineEdit.ActionPosition.LeadingPosition)
        self.model = EditableChatListModel(store, self)
        self.list = ChatListView()
        self.list.setObjectName("ChatList")
        self.list.setModel(self.model)
        self.list.setItemDelegate(ChatListDelegate(theme, self.list))
        self.list.setFrameShape(QFrame.Shape.NoFrame)
        self.list.setMouseTracking(True)
        self.list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setEditTriggers(
            QAbstractItemView.EditTrigger.EditKeyPressed | QAbstractItemView.EditTrigger.DoubleClicked
        )
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.clicked.connect(self._clicked)
        self.list.delete_requested.connect(self.delete_requested)
        self.empty = QLabel("No chats yet")
        self.empty.setObjectName("Muted")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setContentsMargins(0, SPACE_M, 0, 0)
        layout.addWidget(self.new_button)
        layout.addWidget(self.search)
        layout.addWidget(self.empty)
        layout.addWidget(self.list, 1)
        self.filler = QWidget()
        layout.addWidget(self.filler, 1)
        self._store = store
        self._deleted: DeletedChat | None = None
        self.undo_bar = QFrame()
        self.undo_bar.setObjectName("UndoBar")
        bar = QHBoxLayout(self.undo_bar)
        bar.setContentsMargins(SPACE_S, SPACE_S, SPACE_S, SPACE_S)
        self.undo_label = QLabel()
        self.undo_label.setObjectName("Muted")
        self.undo_button = QPushButton("Undo")
        self.undo_button.setObjectName("UndoDelete")
        self.undo_button.setToolTip("Put the deleted chat back with all its messages (Ctrl+Z)")
        self.undo_button.clicked.connect(self.undo_delete)
        bar.addWidget(self.undo_label, 1)
        bar.addWidget(self.undo_button)
        self.undo_bar.hide()
        layout.addWidget(self.undo_bar)
        self._undo_timer = QTimer(self, singleShot=True, interval=UNDO_MS)
        self._undo_timer.timeout.connect(self._forget_deleted)
        QShortcut(QKeySequence.StandardKey.Undo, self, self.undo_delete,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self._search_timer = QTimer(self, singleShot=True, interval=200)
        self._search_timer.timeout.connect(self._apply_search)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.model.modelReset.connect(self._update_empty)
        self._update_empty()

    def set_theme(self, theme: Theme) -> None:
        delegate = self.list.itemDelegate()
        if isinstance(delegate, ChatListDelegate):
            delegate.theme = theme
        self.list.viewport().update()

    def refresh(self, current: int | None) -> None:
        """Re-read the chats and keep ``current`` selected."""
        self.model.refresh()
        self.select(current)

    def select(self, chat_id: int | None) -> None:
        row = self.model.row_of(chat_id) if chat_id is not None else None
        if row is None:
            self.list.clearSelection()
            self.list.setCurrentIndex(QModelIndex())
            return
        index = self.model.index(row)
        self.list.setCurrentIndex(index)
        self.list.scrollTo(index)

    def rename(self, chat_id: int) -> None:
        row = self.model.row_of(chat_id)
        if row is not None:
            self.list.edit(self.model.index(row))

    def delete_chat(self, chat_id: int) -> None:
        """Delete the chat now and offer Undo for a while (raises ChatStoreError if it fails)."""
        deleted = self._store.delete_chat(chat_id)
        self._deleted = deleted
        title = self.undo_label.fontMetrics().elidedText(
            f"Deleted “{deleted.chat.display_title}”", Qt.TextElideMode.ElideRight, 170)
        self.undo_label.setText(title)
        self.undo_bar.show()
        self._undo_timer.start()

    @property
    def can_undo(self) -> bool:
        return self._deleted is not None

    def undo_delete(self) -> None:
        """Put the last deleted chat back: the same id, messages and order."""
        deleted, self._deleted = self._deleted, None
        self._undo_timer.stop()
        self.undo_bar.hide()
        if deleted is None:
            return
        chat = self._store.restore_chat(deleted)
        self.refresh(chat.id)
        self.chat_restored.emit(chat.id)

    def _forget_deleted(self) -> None:
        self._deleted = None
        self.undo_bar.hide()

    def _apply_search(self) -> None:
        current = self.list.currentIndex().data(ChatListRole.CHAT_ID)
        self.model.set_query(self.search.text())
        self.select(current)

    def _update_empty(self) -> None:
        searching = bool(self.model.query)
        self.empty.setText("No chats match" if searching else "No chats yet")
        empty = self.model.rowCount() == 0
        self.empty.setVisible(empty)
        self.list.setVisible(not empty)
        self.filler.setVisible(empty)

    def _clicked(self, index: QModelIndex) -> None:
        chat_id = index.data(ChatListRole.CHAT_ID)
        if chat_id is not None:
            self.chat_selected.emit(int(chat_id))

    def _menu(self, point: QPoint) -> None:
        index = self.list.indexAt(point)
        if not index.isValid():
            return
        chat_id = int(index.data(ChatListRole.CHAT_ID))
        menu = QMenu(self)
        menu.addAction("Rename", lambda: self.list.edit(index))
        menu.addAction("Delete", lambda: self.delete_requested.emit(chat_id))
        menu.popup(self.list.viewport().mapToGlobal(point))
