"""Paints a download row as a card (title, progress bar, speed and time left, buttons) and takes its clicks."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from app.hub.queue import JobState
from app.ui.downloads.model import ACTION_LABELS, Role
from app.ui.theme import SPACE_L, SPACE_M, SPACE_S, SPACE_XS, Theme

AnyIndex = QModelIndex | QPersistentModelIndex
ROW_HEIGHT = 100
BAR_HEIGHT = 8
BUTTON_HEIGHT = 30


class DownloadDelegate(QStyledItemDelegate):
    """Draws each job as a rounded card; the buttons on its right are hit-tested on release.

    Signals:
        action_triggered(int, str): the job id and the action ("pause", "resume", "cancel",
            "retry", "remove", "folder", "chat") whose button was clicked.
    """

    action_triggered = Signal(int, str)

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme = theme

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        return QSize(480, ROW_HEIGHT)

    # -- geometry -------------------------------------------------------------
    @staticmethod
    def _card(rect: QRect) -> QRect:
        return rect.adjusted(0, SPACE_XS, 0, -SPACE_XS)

    def button_rects(self, rect: QRect, index: AnyIndex) -> list[tuple[str, QRect]]:
        """Where each action button of the row at ``rect`` is drawn, left to right."""
        card = self._card(rect)
        metrics = QFontMetrics(self._font(600))
        right = card.right() - SPACE_L
        top = card.top() + SPACE_M
        placed = []
        for action in reversed(index.data(Role.ACTIONS) or []):
            width = metrics.horizontalAdvance(ACTION_LABELS[action]) + 2 * SPACE_L
            placed.append((action, QRect(right - width, top, width, BUTTON_HEIGHT)))
            right -= width + SPACE_S
        return list(reversed(placed))

    @staticmethod
    def _font(weight: int = 400, delta: int = 0) -> QFont:
        font = QFont()
        font.setWeight(QFont.Weight(weight))
        if delta:
            font.setPointSizeF(font.pointSizeF() + delta)
        return font

    # -- painting -------------------------------------------------------------
    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        t = self.theme
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        card = self._card(option.rect)
        path = QPainterPath()
        path.addRoundedRect(QRectF(card).adjusted(0.5, 0.5, -0.5, -0.5), 12, 12)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.fillPath(path, QColor(t.accent_soft if selected else t.surface))
        painter.setPen(QPen(QColor(t.border), 1))
        painter.drawPath(path)

        buttons = self.button_rects(option.rect, index)
        text_right = (buttons[0][1].left() if buttons else card.right()) - SPACE_L
        left = card.left() + SPACE_L
        state = JobState(index.data(Role.STATE))

        painter.setFont(self._font(600, 1))
        painter.setPen(QColor(t.text))
        title_rect = QRect(left, card.top() + SPACE_M, text_right - left, BUTTON_HEIGHT)
        title = painter.fontMetrics().elidedText(index.data(), Qt.TextElideMode.ElideMiddle, title_rect.width())
        painter.drawText(title_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, title)

        bar = QRectF(left, card.top() + SPACE_M + BUTTON_HEIGHT + SPACE_S, card.right() - SPACE_L - left, BAR_HEIGHT)
        self._progress(painter, bar, float(index.data(Role.FRACTION) or 0.0), state)

        painter.setFont(self._font())
        colour = t.bad if state is JobState.FAILED else t.text_muted
        painter.setPen(QColor(colour))
        detail_rect = QRect(left, int(bar.bottom()) + SPACE_XS, card.right() - SPACE_L - left,
                            card.bottom() - int(bar.bottom()) - SPACE_XS)
        detail = painter.fontMetrics().elidedText(index.data(Role.DETAIL), Qt.TextElideMode.ElideRight,
                                                  detail_rect.width())
        painter.drawText(detail_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, detail)

        for action, rect in buttons:
            self._button(painter, rect, action)
        painter.restore()

    def _progress(self, painter: QPainter, bar: QRectF, fraction: float, state: JobState) -> None:
        t = self.theme
        track = QPainterPath()
        track.addRoundedRect(bar, BAR_HEIGHT / 2, BAR_HEIGHT / 2)
        painter.fillPath(track, QColor(t.hover))
        fill_colour = {JobState.DONE: t.good, JobState.FAILED: t.bad, JobState.PAUSED: t.warn,
                       JobState.CANCELLED: t.text_muted}.get(state, t.accent)
        if fraction > 0:
            filled = QRectF(bar.left(), bar.top(), max(bar.width() * min(fraction, 1.0), BAR_HEIGHT), bar.height())
            fill = QPainterPath()
            fill.addRoundedRect(filled, BAR_HEIGHT / 2, BAR_HEIGHT / 2)
            painter.fillPath(fill, QColor(fill_colour))

    def _button(self, painter: QPainter, rect: QRect, action: str) -> None:
        t = self.theme
        primary = action in ("chat", "resume", "retry")
        path = QPainterPath()
        path.addRoundedRect(QRectF(rect).adjusted(0.5, 0.5, -0.5, -0.5), 8, 8)
        painter.fillPath(path, QColor(t.accent if primary else t.surface))
        painter.setPen(QPen(QColor(t.accent if primary else t.border), 1))
        painter.drawPath(path)
        painter.setFont(self._font(600))
        painter.setPen(QColor(t.accent_text if primary else t.text))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, ACTION_LABELS[action])

    # -- clicks ---------------------------------------------------------------
    def editorEvent(self, event: QEvent, model: object, option: QStyleOptionViewItem, index: AnyIndex) -> bool:
        if event.type() == QEvent.Type.MouseButtonRelease and isinstance(event, QMouseEvent) \
                and event.button() == Qt.MouseButton.LeftButton:
            for action, rect in self.button_rects(option.rect, index):
                if rect.contains(event.position().toPoint()):
                    self.action_triggered.emit(int(index.data(Role.JOB_ID)), action)
                    return True
        return False
