"""Long GPTQ branch names in the catalogue tree: whole at the default window size, elided in the middle when
narrow, and whole in the tooltip. The text checked is what the view draws: its delegate's options, the
style's text rectangle and Qt's eliding."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QStyle, QStyleOptionViewItem, QTreeView
from pytestqt.qtbot import QtBot

from app.ui.catalog.columns import name_floor
from app.ui.catalog.page import CatalogPage
from app.ui.catalog.table_model import Column
from app.ui.context import AppContext
from app.ui.main_window import MainWindow

DEFAULT_SIZE = (1280, 800)  # MainWindow's size on a first start
LONGEST = "gptq-4bit-128g-actorder_False"


def catalogue(qtbot: QtBot, context: AppContext, width: int, height: int) -> CatalogPage:
    window = MainWindow(context)
    qtbot.addWidget(window)
    window.resize(width, height)
    window.show()
    window.show_page("catalog")
    qtbot.waitExposed(window)
    page = window.pages["catalog"]
    assert isinstance(page, CatalogPage)
    qtbot.waitUntil(lambda: page.table.viewport().width() > 0)
    return page


def drawn(view: QTreeView, index: QModelIndex) -> tuple[str, Qt.TextElideMode]:
    """The text the view paints in a cell, and how it elides it."""
    option = QStyleOptionViewItem()
    option.initFrom(view)
    option.rect = view.visualRect(index)
    option.textElideMode = view.textElideMode()
    view.itemDelegateForIndex(index).initStyleOption(option, index)
    style = view.style()
    rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, option, view)
    margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, view) + 1
    text = option.fontMetrics.elidedText(option.text, option.textElideMode, rect.width() - 2 * margin)
    return text, option.textElideMode


def branches(page: CatalogPage) -> dict[str, QModelIndex]:
    """Every GPTQ branch in the tree (column 0 of its variant row), by name."""
    found = {}
    for group in range(page.tree.rowCount()):
        parent = page.tree.index(group, 0)
        for row in range(page.tree.rowCount(parent)):
            index = page.tree.index(row, Column.MODEL, parent)
            name = index.data(Qt.ItemDataRole.DisplayRole)
            if name.startswith("gptq-"):
                found[name] = index
    return found


def test_branch_names_show_whole_at_the_default_window_size(qtbot: QtBot, context: AppContext) -> None:
    page = catalogue(qtbot, context, *DEFAULT_SIZE)
    named = branches(page)
    assert LONGEST in named and "gptq-4bit-32g-actorder_True" in named
    for name, index in named.items():
        assert drawn(page.table, index)[0] == name  # not cut at the end, nor anywhere
        assert page.table.visualRect(index).isValid()
        tooltip = index.data(Qt.ItemDataRole.ToolTipRole)
        assert tooltip.startswith(f"{name} (GPTQ ")  # the full name, then what it means
    first_model = page.tree.index(0, 0)
    assert drawn(page.table, first_model)[1] == Qt.TextElideMode.ElideRight  # a model row keeps its elision


def test_a_narrow_window_keeps_the_start_and_end_of_a_branch(qtbot: QtBot, context: AppContext) -> None:
    page = catalogue(qtbot, context, 900, 560)  # the window's minimum size
    header = page.table.header()
    assert header.sectionSize(Column.MODEL) >= name_floor(page.table)  # the other columns scroll instead
    text, mode = drawn(page.table, branches(page)[LONGEST])
    assert mode == Qt.TextElideMode.ElideMiddle
    assert text != LONGEST and "…" in text
    assert text.startswith("gptq-4bit") and text.endswith("order_False")  # True or False stays readable
    assert branches(page)[LONGEST].data(Qt.ItemDataRole.ToolTipRole).startswith(LONGEST)


def test_the_first_column_stretches_again_when_the_window_grows(qtbot: QtBot, context: AppContext) -> None:
    page = catalogue(qtbot, context, 900, 560)
    narrow = page.table.header().sectionSize(Column.MODEL)
    page.window().resize(*DEFAULT_SIZE)
    qtbot.waitUntil(lambda: page.table.header().sectionSize(Column.MODEL) > narrow)
    header = page.table.header()
    total = sum(header.sectionSize(c) for c in range(header.count()) if not header.isSectionHidden(c))
    assert total == page.table.viewport().width()  # no sideways scrolling at the default size
    assert drawn(page.table, branches(page)[LONGEST])[0] == LONGEST
