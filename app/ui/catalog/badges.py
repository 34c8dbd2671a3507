"""Item delegate that draws the format and fit columns as coloured pills."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem, QWidget

from app.ui.catalog.table_model import Role
from app.ui.theme import Theme

PILL_LEFT = 8  # from the cell's left edge
PILL_PADDING = 8  # each side of the pill's text


def pill_font(font: QFont) -> QFont:
    """The badge's font: the cell's, smaller and bold."""
    pill = QFont(font)
    pill.setPointSizeF(max(7.0, pill.pointSizeF() * 0.85))
    pill.setBold(True)
    return pill


def pill_width(font: QFont, text: str) -> int:
    """How far a badge reaches from the cell's left edge, in a cell of font ``font``."""
    return PILL_LEFT + QFontMetrics(pill_font(font)).horizontalAdvance(text) + 2 * PILL_PADDING


class BadgeDelegate(QStyledItemDelegate):
    """Paints the cell's text inside a rounded pill coloured by the cell's badge kind."""

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme = theme

    def _colours(self, kind: str) -> tuple[str, str]:
        t = self.theme
        dark = t.dark
        table = {
            "gguf": ("#1c7ed6", "#1b2f44" if dark else "#e0efff"),
            "gptq": ("#9c36b5", "#3a2342" if dark else "#f6e5fb"),
            "good": (t.good, "#1f3a26" if dark else "#e3f5e6"),
            "tight": (t.warn, t.warn_soft),
            # fits over this machine and the remote ones
            "remote": ("#3bc9db" if dark else "#0c8599", "#15363b" if dark else "#dff4f6"),
            "no": (t.bad, "#462323" if dark else "#fde8e8"),
        }
        return table.get(kind, (t.text_muted, t.surface_alt))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        kind = index.data(Role.BADGE)
        if not kind:
            super().paint(painter, option, index)
            return
        # Draw the selection/background as usual, then the pill on top without text.
        text = str(index.data(Qt.ItemDataRole.DisplayRole))
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget else None
        if style:
            style.drawControl(style.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        fg, bg = self._colours(str(kind))
        font = pill_font(option.font)
        metrics = QFontMetrics(font)
        width = metrics.horizontalAdvance(text) + 2 * PILL_PADDING
        height = metrics.height() + 6
        rect = QRectF(option.rect.left() + PILL_LEFT, option.rect.center().y() - height / 2 + 1, width, height)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(bg))
        painter.drawRoundedRect(rect, height / 2, height / 2)
        painter.setPen(QColor(fg))
        painter.setFont(font)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()
