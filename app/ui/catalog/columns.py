"""The catalogue tree's columns: fixed ones as wide as their usual text, branch names elided in the middle.

The first column stretches; it gets what the fixed columns leave, so they are measured from the
font rather than fixed in pixels. A long GPTQ branch (``gptq-4bit-128g-actorder_False``) that still
does not fit loses its middle, not its end (``actorder_True`` vs ``_False`` stays readable); its
tooltip has the full name (``CatalogTreeModel.data``).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QHeaderView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QTreeView

from app.ui.catalog.badges import pill_width
from app.ui.catalog.table_model import Column

# Each side of a cell's text: hearth.qss pads QTreeView#CatalogTable::item by this much, and the style keeps
# text_margin() (3 px in Qt's styles) inside it, so text starts 8 px from the cell's edge, as header text does.
CELL_PADDING = 5
HEADER_PADDING = 8  # each side of a header's text (QHeaderView::section in hearth.qss)
# The widest text a column usually shows (badges are pills: measured as the badge delegate draws them).
TEXT_SAMPLES = {Column.BITS: "8", Column.GROUP: "None", Column.SIZE: "888.88 MB", Column.STATUS: "Converted",
                Column.SOURCE: "imported"}
BADGE_SAMPLES = {Column.FORMAT: ("GPTQ", "GGUF"), Column.FIT: ("too big", "remote", "tight", "fits")}
# In a narrow window the first column stays wide enough for this much of a branch name (elided in the
# middle); the other columns then scroll sideways instead of squeezing the names away.
NAME_FLOOR = "gptq-4bit…actorder_True"


class VariantNameDelegate(QStyledItemDelegate):
    """The first column: a variant's quant or branch elided in the middle; a model's row as the view elides it."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        super().initStyleOption(option, index)
        if index.parent().isValid():  # a variant row (model rows are top-level)
            option.textElideMode = Qt.TextElideMode.ElideMiddle


def text_margin(view: QTreeView) -> int:
    """What the style keeps each side of a cell's text, inside its padding (Qt elides text to the rest)."""
    return view.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, view) + 1


def column_widths(view: QTreeView) -> dict[Column, int]:
    """Widths for the fixed columns in this view's fonts: the usual cell text or the header, whichever is wider."""
    cell = view.fontMetrics()
    bold = QFont(view.header().font())
    bold.setBold(True)
    head = QFontMetrics(bold)
    model = view.model()
    widths = {}
    for column in (*BADGE_SAMPLES, *TEXT_SAMPLES):
        if column in BADGE_SAMPLES:
            content = max(pill_width(view.font(), text) for text in BADGE_SAMPLES[column]) \
                + CELL_PADDING + text_margin(view)
        else:
            content = cell.horizontalAdvance(TEXT_SAMPLES[column]) + 2 * (CELL_PADDING + text_margin(view))
        title = str(model.headerData(column, Qt.Orientation.Horizontal) or "")
        widths[column] = max(content, head.horizontalAdvance(title) + 2 * HEADER_PADDING)
    return dict(sorted(widths.items()))


def name_floor(view: QTreeView) -> int:
    """The narrowest the first column gets: a variant's indentation and :data:`NAME_FLOOR`."""
    depth = 2 if view.rootIsDecorated() else 1
    return (view.indentation() * depth + view.fontMetrics().horizontalAdvance(NAME_FLOOR)
            + 2 * (CELL_PADDING + text_margin(view)))


class FirstColumnFloor(QObject):
    """The first column stretches over the room the others leave, but never below :func:`name_floor`."""

    def __init__(self, view: QTreeView) -> None:
        super().__init__(view)
        self.view = view
        view.viewport().installEventFilter(self)
        view.header().sectionResized.connect(self._section_resized)
        self.update()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.update()
        return False

    def _section_resized(self, section: int, _old: int, _new: int) -> None:
        if section != Column.MODEL:  # a column resized by hand changes the room left
            self.update()

    def update(self) -> None:
        header = self.view.header()
        others = sum(header.sectionSize(c) for c in range(1, header.count()) if not header.isSectionHidden(c))
        floor = name_floor(self.view)
        if self.view.viewport().width() - others >= floor:
            if header.sectionResizeMode(Column.MODEL) != QHeaderView.ResizeMode.Stretch:
                header.setSectionResizeMode(Column.MODEL, QHeaderView.ResizeMode.Stretch)
            return
        if header.sectionResizeMode(Column.MODEL) != QHeaderView.ResizeMode.Interactive:
            header.setSectionResizeMode(Column.MODEL, QHeaderView.ResizeMode.Interactive)
        if header.sectionSize(Column.MODEL) != floor:
            header.resizeSection(Column.MODEL, floor)


def fit_columns(view: QTreeView) -> FirstColumnFloor:
    """Size the fixed columns (still resizable by hand); the first column stretches over the rest, with a floor."""
    header = view.header()
    for column, width in column_widths(view).items():
        header.resizeSection(column, width)
    return FirstColumnFloor(view)
