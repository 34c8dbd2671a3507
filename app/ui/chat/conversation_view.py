"""The scrolling conversation: a list view that sticks to the bottom and loads older messages on top."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, Qt, QTimer
from PySide6.QtGui import QMouseEvent, QResizeEvent
from PySide6.QtWidgets import QAbstractItemView, QFrame, QListView, QStyleOptionViewItem, QWidget

from app.ui.chat.message_delegate import MessageDelegate
from app.ui.chat.messages import MessageListModel
from app.ui.theme import Theme

LOAD_EARLIER_AT_PX = 300


class ConversationView(QListView):
    """Messages, painted by :class:`MessageDelegate`; never a widget per message.

    While the user is at the bottom, growth (a streaming reply) keeps the bottom in view;
    scrolled up, the view stays where it is. Near the top, older messages are prepended
    without moving what is on screen.
    """

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ConversationView")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setUniformItemSizes(False)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMouseTracking(True)
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_Hover)
        self.verticalScrollBar().setSingleStep(24)
        self.message_delegate = MessageDelegate(self, theme)
        self.setItemDelegate(self.message_delegate)
        self._stick = True
        self._from_bottom: int | None = None
        self._laid_out_width = -1
        bar = self.verticalScrollBar()
        bar.rangeChanged.connect(self._on_range_changed)
        bar.valueChanged.connect(self._on_value_changed)

    def message_model(self) -> MessageListModel:
        model = self.model()
        assert isinstance(model, MessageListModel)
        return model

    @property
    def at_bottom(self) -> bool:
        return self._stick

    def scroll_to_end(self) -> None:
        self._stick = True
        self.scrollToBottom()

    def row_grew(self, row: int) -> None:
        """The row's text changed (streaming): lay out again only if its height changed."""
        index = self.model().index(row, 0)
        height = self.message_delegate.sizeHint(QStyleOptionViewItem(), index).height()
        if height != self.visualRect(index).height():
            self.message_delegate.sizeHintChanged.emit(index)
        else:
            self.viewport().update(self.visualRect(index))

    def _on_range_changed(self, _low: int, high: int) -> None:
        bar = self.verticalScrollBar()
        if self._from_bottom is not None:
            bar.setValue(high - self._from_bottom)
            self._from_bottom = None
        elif self._stick:
            bar.setValue(high)

    def _on_value_changed(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._stick = value >= bar.maximum() - 4
        if value < LOAD_EARLIER_AT_PX and self._from_bottom is None:
            model = self.model()
            if isinstance(model, MessageListModel) and model.has_earlier():
                self._from_bottom = bar.maximum() - value
                model.load_earlier()

    def resizeEvent(self, event: QResizeEvent) -> None:
        stick = self._stick
        super().resizeEvent(event)
        if stick:
            QTimer.singleShot(0, self.scroll_to_end)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        super().mouseMoveEvent(event)
        index = self.indexAt(event.position().toPoint())
        target = None
        if index.isValid():
            position = event.position()
            target = self.message_delegate.target_at(
                self.visualRect(index), index, position.x(), position.y()
            )
        shape = Qt.CursorShape.PointingHandCursor if target else Qt.CursorShape.ArrowCursor
        if self.viewport().cursor().shape() != shape:
            self.viewport().setCursor(shape)

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Leave:
            self.viewport().unsetCursor()
        elif event.type() == QEvent.Type.Resize and self.viewport().width() != self._laid_out_width:
            # The viewport also narrows when the scroll bar appears, which the view's own
            # resize handling misses: rows would keep heights measured at the old width.
            self._laid_out_width = self.viewport().width()
            self.scheduleDelayedItemsLayout()
        return super().viewportEvent(event)

    def index_for_row(self, row: int) -> QModelIndex:
        return self.model().index(row, 0)


