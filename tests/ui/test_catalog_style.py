"""hearth.qss reaches the catalogue tree (QTreeView "CatalogTable"): what the view paints, grabbed offscreen."""

from __future__ import annotations

from PySide6.QtCore import QPoint
from PySide6.QtGui import QColor
from pytestqt.qtbot import QtBot

from app.ui.catalog.page import CatalogPage
from app.ui.catalog.table_model import Column
from app.ui.context import AppContext
from app.ui.main_window import MainWindow

VARIANT = "mistral-7b-openorca:gguf:Q4_K_M"


def catalogue(qtbot: QtBot, context: AppContext) -> CatalogPage:
    window = MainWindow(context)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    window.show_page("catalog")
    qtbot.waitExposed(window)
    page = window.pages["catalog"]
    assert isinstance(page, CatalogPage)
    return page


def test_a_selected_row_is_the_soft_accent_with_the_text_colour(qtbot: QtBot, context: AppContext) -> None:
    page = catalogue(qtbot, context)
    theme = context.theme.theme
    assert page.select_variant(VARIANT)
    index = page.tree.index_of_variant(VARIANT)
    image = page.table.viewport().grab().toImage()
    for column in (Column.MODEL, Column.GROUP, Column.STATUS):  # the name's cell, and cells with no text
        rect = page.table.visualRect(index.siblingAtColumn(column))
        assert rect.isValid()
        colour = image.pixelColor(rect.right() - 2, rect.center().y())
        assert colour == QColor(theme.accent_soft), (column, colour.name())  # not the solid accent
    branch = page.table.visualRect(index).left() - 4  # the indentation beside the selected row
    assert image.pixelColor(branch, page.table.visualRect(index).center().y()) == QColor(theme.accent_soft)


def test_the_tree_has_the_rounded_border(qtbot: QtBot, context: AppContext) -> None:
    page = catalogue(qtbot, context)
    theme = context.theme.theme
    image = page.window().grab().toImage()
    top_left = page.table.mapTo(page.window(), QPoint(0, 0))
    x, y = top_left.x(), top_left.y()
    assert image.pixelColor(x, y + page.table.height() // 2) == QColor(theme.border)  # the 1 px border...
    assert image.pixelColor(x, y) == image.pixelColor(x - 2, y)  # ...round: the corner is the page behind it
    assert image.pixelColor(x + 2, y + 30) == QColor(theme.surface)  # the header lets the tree's surface through
