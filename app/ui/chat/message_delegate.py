"""Paints one message: a bubble (you) or a card (the model) with Markdown, code blocks, actions."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QPointF,
    QRect,
    QRectF,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QColor,
    QFont,
    QFontMetrics,
    QMouseEvent,
    QPainter,
    QPalette,
    QPen,
    QTextDocument,
)
from PySide6.QtWidgets import QAbstractItemView, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.chats.records import StoredMessage
from app.engine.reasoning import SplitReply, split_thinking
from app.ui.chat.markdown import build_document, code_blocks, code_frames
from app.ui.chat.messages import MessageRole
from app.ui.theme import SPACE_L, SPACE_M, SPACE_S, SPACE_XL, SPACE_XS, Theme

AnyIndex = QModelIndex | QPersistentModelIndex
COLUMN_MAX = 820  # the conversation column never grows wider than this (readable lines)
USER_SHARE = 0.78  # a user bubble takes at most this share of the column
PAD = SPACE_M  # inside a bubble
RADIUS = 14
CACHE_SIZE = 600
ACTION_LABELS = {"copy": "Copy", "edit": "Edit", "continue": "Continue", "regenerate": "Regenerate"}
CONTINUABLE = ("interrupted", "stopped")  # a last reply in these states offers Continue


def stats_line(message: StoredMessage, live: bool) -> str:
    """The quiet line under a reply: tokens, speed, model, or what happened to it."""
    if message.role != "assistant":
        return ""
    if live:
        return "Generating…"
    parts = []
    if message.tokens:
        parts.append(f"{message.tokens} tokens")
    if message.tokens_per_s:
        parts.append(f"{message.tokens_per_s:.1f} tok/s")
    if message.model:
        parts.append(message.model)
    if message.status == "stopped":
        parts.insert(0, "Stopped")
    elif message.status == "error":
        parts.insert(0, "Failed")
    elif message.status in ("streaming", "interrupted"):
        parts.insert(0, "Interrupted")  # its writer died (kill -9, a full disk): text kept
    return "  ·  ".join(parts)


@dataclass
class RowLayout:
    """Where everything of one row is, in view coordinates."""

    bubble: QRectF
    text_origin: QPointF
    document: QTextDocument
    footer: QRectF
    actions: list[tuple[str, QRectF]] = field(default_factory=list)
    copy_buttons: list[tuple[int, QRectF]] = field(default_factory=list)
    code_rects: list[QRectF] = field(default_factory=list)
    # A reply's thinking: the "Thinking" header (click to open or close), and its text when open.
    thinking_header: QRectF | None = None
    thinking_label: str = ""
    thinking_document: QTextDocument | None = None
    thinking_origin: QPointF | None = None

    def moved(self, dy: float) -> RowLayout:
        """The same layout ``dy`` pixels lower."""
        if not dy:
            return self
        offset = QPointF(0, dy)
        return RowLayout(
            self.bubble.translated(0, dy), self.text_origin + offset, self.document,
            self.footer.translated(0, dy),
            [(name, r.translated(0, dy)) for name, r in self.actions],
            [(n, r.translated(0, dy)) for n, r in self.copy_buttons],
            [r.translated(0, dy) for r in self.code_rects],
            self.thinking_header.translated(0, dy) if self.thinking_header is not None else None,
            self.thinking_label, self.thinking_document,
            self.thinking_origin + offset if self.thinking_origin is not None else None,
        )


def thinking_label(split: SplitReply, live: bool, expanded: bool) -> str:
    """The header of a thinking block: an arrow, "Thinking", and while it streams, its latest words."""
    arrow = "▾" if expanded else "▸"
    if split.open and live:
        tail = " ".join((split.thinking or "").split()[-12:])
        return f"{arrow} Thinking…  {tail}" if tail and not expanded else f"{arrow} Thinking…"
    return f"{arrow} Thinking"


class MessageDelegate(QStyledItemDelegate):
    """Lays out and paints messages; documents are cached by (message, text, width, theme).

    Signals:
        action_requested(str, int): "copy", "edit", "continue" or "regenerate" clicked on a row.
        thinking_toggled(int, bool): a reply's "Thinking" header was clicked (message id, now open).
        code_copied(str): a code block's copy button was clicked; the code is in the clipboard.
        link_activated(str): a link in a message was clicked.
    """

    action_requested = Signal(str, int)
    thinking_toggled = Signal(int, bool)
    code_copied = Signal(str)
    link_activated = Signal(str)

    def __init__(self, view: QAbstractItemView, theme: Theme) -> None:
        super().__init__(view)
        self.view = view
        self.theme = theme
        self._documents: OrderedDict[tuple[object, ...], QTextDocument] = OrderedDict()
        self._sizes: dict[tuple[object, ...], QSize] = {}
        self._layouts: dict[tuple[object, ...], RowLayout] = {}
        self.expanded_thinking: set[int] = set()  # ids of replies whose thinking is open

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self._documents.clear()
        self._sizes.clear()
        self._layouts.clear()

    # -- layout -----------------------------------------------------------------------------

    def _column(self) -> tuple[float, float]:
        width = self.view.viewport().width()
        column = min(COLUMN_MAX, max(200, width - 2 * SPACE_XL))
        return (width - column) / 2, column

    def _font(self) -> QFont:
        font = QFont(self.view.font())
        font.setPointSizeF(font.pointSizeF() * 1.05)
        return font

    def _small_font(self) -> QFont:
        font = QFont(self.view.font())
        font.setPointSizeF(font.pointSizeF() * 0.88)
        return font

    def shown_text(self, message: StoredMessage) -> str:
        """What the message body shows: a reply's answer without its thinking block."""
        if message.role != "assistant":
            return message.content or " "
        split = split_thinking(message.content)
        if split.thinking is not None:
            return split.answer
        return message.content or "…"

    def document(self, message: StoredMessage, width: float, text: str | None = None,
                 kind: str = "body") -> QTextDocument:
        text = self.shown_text(message) if text is None else text
        key = (message.id, kind, text, round(width), self.theme.name)
        document = self._documents.get(key)
        if document is None:
            font = self._small_font() if kind == "thinking" else self._font()
            document = build_document(text, self.theme, font, width, markdown=message.role != "user")
            self._documents[key] = document
            if len(self._documents) > CACHE_SIZE:
                self._documents.popitem(last=False)
        else:
            self._documents.move_to_end(key)
        return document

    def layout(self, rect: QRect, index: AnyIndex) -> RowLayout | None:
        """The row's geometry at ``rect``; computed once per text, width and state, then moved."""
        message: StoredMessage | None = index.data(MessageRole.MESSAGE)
        if message is None:
            return None
        last, live = bool(index.data(MessageRole.LAST_REPLY)), bool(index.data(MessageRole.LIVE))
        key = (message.id, message.content, message.role, last, live,
               self.view.viewport().width(), self.theme.name, message.id in self.expanded_thinking)
        base = self._layouts.get(key)
        if base is None:
            base = self._compute_layout(message, last, live)
            if len(self._layouts) > CACHE_SIZE:
                self._layouts.clear()
            self._layouts[key] = base
        return base.moved(rect.top())

    def _compute_layout(self, message: StoredMessage, last: bool, live: bool) -> RowLayout:
        left, column = self._column()
        rect = QRect(0, 0, 0, 0)
        user = message.role == "user"
        inner_max = (column * USER_SHARE if user else column) - 2 * PAD
        split = split_thinking(message.content) if not user else SplitReply(None, message.content)
        expanded = message.id in self.expanded_thinking
        header_height = 0.0
        thinking_document: QTextDocument | None = None
        if split.thinking is not None:
            header_height = QFontMetrics(self._small_font()).height() + SPACE_S
            if expanded:
                thinking_document = self.document(message, inner_max - SPACE_M, split.thinking or "…",
                                                  kind="thinking")
                header_height += thinking_document.size().height() + SPACE_M
            if not split.answer.strip() and not expanded:
                header_height -= SPACE_S
        document = self.document(message, inner_max)
        if user:
            ideal = min(inner_max, document.idealWidth() + 1)
            if ideal < inner_max:
                document = self.document(message, ideal)
            inner_width = ideal
        else:
            inner_width = inner_max
        answer_height = document.size().height() if (split.thinking is None or split.answer.strip()) else 0.0
        height = answer_height + header_height
        bubble_width = inner_width + 2 * PAD
        bubble_left = left + column - bubble_width if user else left
        bubble = QRectF(bubble_left, rect.top() + SPACE_S, bubble_width, height + 2 * PAD)
        footer_height = QFontMetrics(self._small_font()).height() + SPACE_XS
        # A reply has a footer line (stats, actions); a user bubble keeps its actions beside it.
        footer = QRectF(left, bubble.bottom() + SPACE_XS, column, 0 if user else footer_height)
        result = RowLayout(bubble, QPointF(bubble.left() + PAD, bubble.top() + PAD + header_height),
                           document, footer)
        if split.thinking is not None:
            line = QFontMetrics(self._small_font()).height()
            result.thinking_header = QRectF(bubble.left() + PAD, bubble.top() + PAD - SPACE_XS,
                                            inner_width, line + SPACE_XS)
            result.thinking_label = thinking_label(split, live, expanded)
            if thinking_document is not None:
                result.thinking_document = thinking_document
                result.thinking_origin = QPointF(bubble.left() + PAD + SPACE_M, bubble.top() + PAD + line + SPACE_S)
        metrics = QFontMetrics(self._small_font())
        names = ["copy", "edit"] if user else ["copy"]
        if last and not live:
            names += ["continue"] if message.status in CONTINUABLE else []
            names.append("regenerate")
        labels = ACTION_LABELS
        x = bubble.left() - SPACE_XS if user else footer.right()
        top = bubble.bottom() - footer_height if user else footer.top()
        for name in reversed(names):
            w = metrics.horizontalAdvance(labels[name]) + SPACE_M
            x -= w
            result.actions.insert(0, (name, QRectF(x, top, w, footer_height)))
        layout = document.documentLayout()
        button_w = metrics.horizontalAdvance("Copy") + SPACE_L
        for block_index, frame in code_frames(document):
            frame_rect = layout.frameBoundingRect(frame).translated(result.text_origin)
            result.code_rects.append(frame_rect)
            button = QRectF(frame_rect.right() - button_w - SPACE_XS, frame_rect.top() + SPACE_XS,
                            button_w, metrics.height() + SPACE_XS)
            result.copy_buttons.append((block_index, button))
        return result

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        message: StoredMessage | None = index.data(MessageRole.MESSAGE)
        if message is None:
            return QSize(0, 0)
        width = self.view.viewport().width()
        # Layout rounds are frequent (every growth of a streaming reply): sizes are remembered.
        key = (message.id, message.content, message.role, width, self.theme.name,
               message.id in self.expanded_thinking, bool(index.data(MessageRole.LIVE)))
        size = self._sizes.get(key)
        if size is None:
            layout = self.layout(QRect(0, 0, width, 0), index)
            if layout is None:
                return QSize(0, 0)
            size = QSize(width - 1, int(layout.footer.bottom()) + SPACE_S)
            if len(self._sizes) > 20 * CACHE_SIZE:
                self._sizes.clear()
            self._sizes[key] = size
        return size

    # -- painting ---------------------------------------------------------------------------

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        rect: QRect = option.rect
        layout = self.layout(rect, index)
        message: StoredMessage | None = index.data(MessageRole.MESSAGE)
        if layout is None or message is None:
            return
        theme = self.theme
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        live = bool(index.data(MessageRole.LIVE))
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        if message.role == "user":
            painter.setBrush(QColor(theme.accent_soft))
        else:
            painter.setBrush(QColor(theme.surface))
            painter.setPen(QPen(QColor(theme.border), 1))
        painter.drawRoundedRect(layout.bubble.adjusted(0.5, 0.5, -0.5, -0.5), RADIUS, RADIUS)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(theme.code_bg))
        for code_rect in layout.code_rects:
            painter.drawRoundedRect(code_rect, 8, 8)
        small = self._small_font()
        if layout.thinking_header is not None:
            self._paint_thinking(painter, layout, hovered)
        context = QAbstractTextDocumentLayout.PaintContext()
        palette = QPalette(context.palette)
        palette.setColor(QPalette.ColorRole.Text, QColor(theme.text))
        palette.setColor(QPalette.ColorRole.Link, QColor(theme.accent))
        context.palette = palette
        painter.translate(layout.text_origin)
        layout.document.documentLayout().draw(painter, context)
        painter.translate(-layout.text_origin)
        painter.setFont(small)
        for _, button in layout.copy_buttons:
            painter.setPen(QPen(QColor(theme.text_muted)))
            painter.setBrush(QColor(theme.surface if not theme.dark else theme.surface_alt))
            painter.drawRoundedRect(button, 6, 6)
            painter.drawText(button, Qt.AlignmentFlag.AlignCenter, "Copy")
        stats = stats_line(message, live)
        if stats:
            colour = theme.bad if message.status == "error" else theme.text_muted
            if message.status in ("interrupted", "streaming") and not live:
                colour = theme.warn  # cut off by a crash or a full disk: Continue or Regenerate
            painter.setPen(QPen(QColor(colour)))
            painter.drawText(layout.footer.adjusted(SPACE_XS, 0, 0, 0),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, stats)
        if hovered and not live:
            labels = ACTION_LABELS
            painter.setPen(QPen(QColor(theme.accent)))
            for name, action_rect in layout.actions:
                painter.drawText(action_rect, Qt.AlignmentFlag.AlignCenter, labels[name])
        painter.restore()

    def _paint_thinking(self, painter: QPainter, layout: RowLayout, hovered: bool) -> None:
        """The "Thinking" header, and when open, the thinking in muted text beside a rule."""
        theme = self.theme
        header = layout.thinking_header
        assert header is not None
        font = self._small_font()
        font.setWeight(QFont.Weight.DemiBold)
        painter.setFont(font)
        painter.setPen(QPen(QColor(theme.accent if hovered else theme.text_muted)))
        metrics = QFontMetrics(font)
        title, _, preview = layout.thinking_label.partition("  ")
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(header, align, title)
        if preview:  # the latest words of a thought still streaming, in regular weight
            plain = self._small_font()
            painter.setFont(plain)
            rest = header.adjusted(metrics.horizontalAdvance(title) + SPACE_S, 0, 0, 0)
            painter.drawText(rest, align, QFontMetrics(plain).elidedText(
                preview, Qt.TextElideMode.ElideLeft, int(rest.width())))
        document, origin = layout.thinking_document, layout.thinking_origin
        if document is None or origin is None:
            return
        height = document.size().height()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(theme.border))
        painter.drawRect(QRectF(origin.x() - SPACE_M + 1, origin.y(), 2, height))
        context = QAbstractTextDocumentLayout.PaintContext()
        palette = QPalette(context.palette)
        palette.setColor(QPalette.ColorRole.Text, QColor(theme.text_muted))
        context.palette = palette
        painter.translate(origin)
        document.documentLayout().draw(painter, context)
        painter.translate(-origin)

    def toggle_thinking(self, message_id: int) -> bool:
        """Open or close a reply's thinking; returns whether it is open now."""
        if message_id in self.expanded_thinking:
            self.expanded_thinking.discard(message_id)
        else:
            self.expanded_thinking.add(message_id)
        opened = message_id in self.expanded_thinking
        self.thinking_toggled.emit(message_id, opened)
        return opened

    # -- clicks -----------------------------------------------------------------------------

    def target_at(self, rect: QRect, index: AnyIndex, x: float, y: float) -> tuple[str, object] | None:
        """What a click at (x, y) would do: ("copy_code", n), ("action", name), ("link", href)."""
        layout = self.layout(rect, index)
        if layout is None:
            return None
        point = QPointF(x, y)
        if layout.thinking_header is not None and layout.thinking_header.contains(point):
            return ("thinking", None)
        for block_index, button in layout.copy_buttons:
            if button.contains(point):
                return ("copy_code", block_index)
        for name, action_rect in layout.actions:
            if action_rect.contains(point):
                return ("action", name)
        if layout.bubble.contains(point):
            anchor = layout.document.documentLayout().anchorAt(point - layout.text_origin)
            if anchor:
                return ("link", anchor)
        return None

    def editorEvent(self, event: QEvent, model: object, option: QStyleOptionViewItem, index: AnyIndex) -> bool:
        if event.type() != QEvent.Type.MouseButtonRelease or not isinstance(event, QMouseEvent):
            return False
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        position = event.position()
        target = self.target_at(option.rect, index, position.x(), position.y())
        if target is None:
            return False
        kind, value = target
        message: StoredMessage = index.data(MessageRole.MESSAGE)
        if kind == "thinking":
            self.toggle_thinking(message.id)
            self.sizeHintChanged.emit(index)
            self.view.viewport().update()
        elif kind == "copy_code":
            blocks = code_blocks(self.shown_text(message))
            if isinstance(value, int) and value < len(blocks):
                self.code_copied.emit(blocks[value])
        elif kind == "action":
            self.action_requested.emit(str(value), index.row())
        elif kind == "link":
            self.link_activated.emit(str(value))
        return True
