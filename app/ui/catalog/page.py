"""The Catalogue page: search and filters over a variant table, with a detail pane beside it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QItemSelection, QModelIndex, QObject, Qt, Signal
from PySide6.QtGui import QAction, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.catalog import Catalog, Model, Variant
from app.catalog.hardware import GB, Hardware, detect_hardware
from app.catalog.installed import InstallState, variant_files
from app.engine.rpc import RemoteSurvey, active_remote_machines, survey
from app.ui.catalog.badges import BadgeDelegate
from app.ui.catalog.columns import VariantNameDelegate, fit_columns
from app.ui.catalog.details import variant_details_html
from app.ui.catalog.hub_search import HubSearchPanel
from app.ui.catalog.table_model import CatalogFilterProxy, CatalogTableModel, Column
from app.ui.catalog.tree_model import CatalogTreeModel
from app.ui.context import AppContext
from app.ui.theme import SPACE_L, SPACE_M, SPACE_S, SPACE_XL, Theme, icon, named
from app.ui.workers import Lane, LatestWorker, create_worker

SIZE_LIMITS = (("Any size", None), ("Up to 1 GB", 1), ("Up to 4 GB", 4), ("Up to 8 GB", 8),
               ("Up to 16 GB", 16), ("Up to 32 GB", 32), ("Up to 64 GB", 64))
BITS = (("Any bits", None), ("2-bit", 2), ("3-bit", 3), ("4-bit", 4), ("5-bit", 5), ("6-bit", 6), ("8-bit", 8))
# How long a saved remote machine may take to answer before the verdicts go on without it.
REMOTE_TIMEOUT_S = 2.0
FORMATS = (("All formats", None), ("GGUF (runs here)", "gguf"), ("GPTQ (convert for llama.cpp)", "gptq"))


class HardwareProbe(QObject):
    """Detects RAM and GPUs off the GUI thread (the GPUs are asked in a child process: too slow for the GUI).

    Signals:
        detected(Hardware): the machine's memory, delivered on the GUI thread.
    """

    detected = Signal(object)

    def start(self) -> None:
        # A closed window deletes the probe, and with it the worker: its answer goes nowhere.
        create_worker(detect_hardware, self.detected.emit, parent=self, lane=Lane.WAITS)


class CatalogPage(QWidget):
    """Browse every variant; pick one to read its details, download it or chat with it."""

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context
        self.source = CatalogTableModel(context.catalog, context.dirs.models, self)
        self.proxy = CatalogFilterProxy(self)
        self.proxy.setSourceModel(self.source)

        title = named(QLabel("Catalogue"), "PageTitle")
        self.subtitle = named(QLabel(), "PageSubtitle")
        self.search = named(QLineEdit(), "SearchBox")
        self.search.setPlaceholderText("Search models, creators, quants, branches…")
        self.search.setClearButtonEnabled(True)
        self._search_icon = QAction(self)
        self.search.addAction(self._search_icon, QLineEdit.ActionPosition.LeadingPosition)
        self.format_box = self._combo(FORMATS)
        self.bits_box = self._combo(BITS)
        self.size_box = self._combo(SIZE_LIMITS)
        self.fits_box = QCheckBox("Fits my machine")

        # A tree: each model (its full name, where it comes from), then the variants the filters keep.
        self.tree = CatalogTreeModel(self.proxy, self)
        self.table = named(QTreeView(), "CatalogTable")
        self.table.setModel(self.tree)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setUniformRowHeights(True)
        self.table.setWordWrap(False)
        self.table.setColumnHidden(Column.QUANT, True)  # the variant's quant or branch is its tree label
        header = self.table.header()
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(Column.MODEL, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(40)
        fit_columns(self.table)  # measured from the font: the first column keeps room for GPTQ branch names
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.names = VariantNameDelegate(self.table)  # a variant's long branch name loses its middle, not its end
        self.table.setItemDelegateForColumn(Column.MODEL, self.names)
        self.badges = BadgeDelegate(context.theme.theme, self.table)
        for column in (Column.FORMAT, Column.FIT):
            self.table.setItemDelegateForColumn(column, self.badges)

        self.details = named(QTextBrowser(), "DetailPane")
        self.details.setOpenExternalLinks(False)
        self.download_button = named(QPushButton("Download"), "Primary")
        self.chat_button = QPushButton("Chat with it")
        self.convert_button = named(QPushButton("Download and convert for llama.cpp"), "Primary")
        self.convert_button.setToolTip("Download this GPTQ branch, then convert it on this machine into a "
                                       "GGUF that llama.cpp (built into Hearth) runs")
        self.alternative_button = QPushButton("Show the GGUF to run instead")
        self.remove_button = QPushButton("Remove from catalogue")
        self.remove_button.setToolTip("Take this imported model out of your catalogue (downloaded files are kept)")
        self.hub_panel = HubSearchPanel(self)
        self.empty_label = named(
            QLabel("No variant matches these filters. Clear the search or widen the filters."), "Muted"
        )
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.hide()

        self._layout(title)
        self._connect()
        self._selected: tuple[Model, Variant] | None = None
        self.remote: RemoteSurvey | None = None  # what the saved remote machines last answered
        self._apply_theme(context.theme.theme)
        self._update_subtitle()
        self.probe = HardwareProbe(self)
        self.probe.detected.connect(self.set_hardware)
        self.probe.start()
        self._installed_changed()  # the install states: the models folder is scanned off the GUI thread
        self._span_model_rows()
        if context.catalog.problems:  # a broken user catalogue: say so, the curated one still shows
            self.hub_panel.status.setText(context.catalog.problems[0])
        if self.proxy.rowCount():
            self._select_first()
        else:
            self._show_details()

    # -- construction -------------------------------------------------------
    @staticmethod
    def _combo(options: tuple[tuple[str, object], ...]) -> QComboBox:
        box = QComboBox()
        for label, value in options:
            box.addItem(label, value)
        return box

    def _layout(self, title: QLabel) -> None:
        filters = QHBoxLayout()
        filters.setSpacing(SPACE_S)
        filters.addWidget(self.search, 1)
        for widget in (self.format_box, self.bits_box, self.size_box, self.fits_box):
            filters.addWidget(widget)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(self.empty_label)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.setSpacing(SPACE_S)
        right_layout.addWidget(self.details, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.alternative_button)
        buttons.addStretch(1)
        buttons.addWidget(self.chat_button)
        buttons.addWidget(self.download_button)
        right_layout.addLayout(buttons)
        convert_row = QHBoxLayout()
        convert_row.addWidget(self.remove_button)
        convert_row.addStretch(1)
        convert_row.addWidget(self.convert_button)
        right_layout.addLayout(convert_row)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([800, 340])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(SPACE_XL, SPACE_L, SPACE_XL, SPACE_L)
        layout.setSpacing(SPACE_M)
        heading = QVBoxLayout()
        heading.setSpacing(2)
        heading.addWidget(title)
        heading.addWidget(self.subtitle)
        layout.addLayout(heading)
        layout.addLayout(filters)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.hub_panel)

    def _connect(self) -> None:
        self.search.textChanged.connect(self.proxy.set_text)
        self.format_box.currentIndexChanged.connect(lambda _: self.proxy.set_format(self.format_box.currentData()))
        self.bits_box.currentIndexChanged.connect(lambda _: self.proxy.set_bits(self.bits_box.currentData()))
        self.size_box.currentIndexChanged.connect(self._size_changed)
        self.fits_box.toggled.connect(self.proxy.set_fits_only)
        self.tree.modelReset.connect(self._after_filter)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.remove_button.clicked.connect(self._remove)
        self.hub_panel.added.connect(self._catalog_reloaded)
        self.hub_panel.worker.removed.connect(self._removed)
        self.download_button.clicked.connect(self._download)
        self.chat_button.clicked.connect(self._chat)
        self.convert_button.clicked.connect(self._convert)
        self.alternative_button.clicked.connect(self._show_alternative)
        self.context.theme.changed.connect(self._apply_theme)
        self._install_scan: LatestWorker[list[Any]] = LatestWorker(self._install_states_scanned, parent=self)
        self._remote_scan: LatestWorker[RemoteSurvey] = LatestWorker(self.set_remote_survey, parent=self,
                                                                     lane=Lane.WAITS)
        self.context.events.installed_changed.connect(self._installed_changed)

    # -- reactions ----------------------------------------------------------
    def set_hardware(self, hardware: Hardware) -> None:
        self.source.set_hardware(hardware)
        self._update_subtitle()
        self._show_details()

    def showEvent(self, event: QShowEvent) -> None:
        """Each time the page is shown: ask the saved remote machines again (the list or their memory may
        have changed since)."""
        super().showEvent(event)
        self.ask_remote_machines()

    def ask_remote_machines(self) -> None:
        """Read the saved remote machines and ask each for its free memory, off the GUI thread."""
        settings_file = self.context.dirs.settings_file
        self._remote_scan.submit(lambda: survey(active_remote_machines(settings_file), REMOTE_TIMEOUT_S))

    def set_remote_survey(self, answers: RemoteSurvey) -> None:
        """The machines that answered count in the verdicts; the others are named in the detail pane."""
        self.remote = answers
        self.source.set_remote_memory(answers.free_bytes, answers.names)
        self._show_details()

    def _size_changed(self, _index: int) -> None:
        limit = self.size_box.currentData()
        self.proxy.set_max_size(None if limit is None else int(limit * GB))

    def _after_filter(self, *_args: object) -> None:
        """The tree was rebuilt: expand it, and keep the selected variant selected if it is still shown."""
        empty = self.proxy.rowCount() == 0
        self.empty_label.setVisible(empty)
        self._update_subtitle()
        self._span_model_rows()
        if empty:
            self._selected = None
            self._show_details()
            return
        previous = self._selected[1].id if self._selected else None
        index = self.tree.index_of_variant(previous) if previous else None
        if index is not None and index.isValid():
            self.table.setCurrentIndex(index)
        else:
            self._select_first()

    def _span_model_rows(self) -> None:
        """Model rows span the whole width, so the full name is never cut; their variants sit below."""
        root = QModelIndex()
        for row in range(self.tree.rowCount()):
            self.table.setFirstColumnSpanned(row, root, True)
        self.table.expandAll()

    def _select_first(self) -> None:
        first_model = self.tree.index(0, 0)
        self.table.setCurrentIndex(self.tree.index(0, 0, first_model))

    def _selection_changed(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        indexes = selected.indexes()
        if indexes:
            index = indexes[0]
            model = self.tree.model_at(index)
            variant = self.tree.variant_at(index)
            if variant is None and model is not None:  # a model row: show its first variant shown
                variant = self.tree.variant_at(self.tree.index(0, 0, index))
            if model is not None and variant is not None:
                self._selected = (model, variant)
        self._show_details()

    def _remove(self) -> None:
        """Take the selected imported model out of the user catalogue (on a worker thread)."""
        if not self._selected or not self._selected[0].imported:
            return
        self.remove_button.setEnabled(False)
        self.hub_panel.worker.remove(self._selected[0].id)

    def _removed(self, catalog: object, model_id: str) -> None:
        name = next((m.name for m in self.context.catalog.models if m.id == model_id), model_id)
        self._selected = None
        self._catalog_reloaded(catalog, "")
        self.hub_panel.status.setText(f"Removed {name} from your catalogue; downloaded files, if any, are kept.")
        self.context.events.status_message.emit(f"Removed {name} from your catalogue")

    def _catalog_reloaded(self, catalog: object, model_id: str) -> None:
        """A model was added or removed: show the new catalogue and select what was added."""
        assert isinstance(catalog, Catalog)
        self.context.catalog = catalog
        self.source.set_catalog(catalog)
        self._installed_changed()  # the new rows' install states
        if model_id:
            added = catalog.model(model_id)
            self.select_variant(added.variants[0].id)
            self.context.events.status_message.emit(f"Added {added.name} to your catalogue")

    def _installed_changed(self) -> None:
        """The models folder changed: scan it off the GUI thread (a newer change supersedes the scan)."""
        self._install_scan.submit(self.source.scan_install_states())

    def _install_states_scanned(self, results: list[Any]) -> None:
        self.source.apply_install_states(results)
        self._show_details()

    def _apply_theme(self, theme: Theme) -> None:
        self.badges.theme = theme
        self._search_icon.setIcon(icon("search", theme.text_muted))
        self.table.viewport().update()
        self._show_details()

    # -- the detail pane and its buttons ------------------------------------
    def selected(self) -> tuple[Model, Variant] | None:
        return self._selected

    def _show_details(self) -> None:
        theme = self.context.theme.theme
        if self._selected is None:
            self.details.setHtml(f"<p style='color:{theme.text_muted}'>Pick a variant to see what it is "
                                 "and what it needs.</p>")
            for button in (self.download_button, self.chat_button, self.alternative_button, self.convert_button):
                button.setEnabled(False)
            self.alternative_button.hide()
            self.convert_button.hide()
            self.remove_button.hide()
            return
        model, variant = self._selected
        row = self.source.row_info(variant.id)
        fit, state, conversion = row.fit, row.state, row.conversion
        alternative = None
        if variant.alternative:
            alternative = self.context.catalog.variant(variant.alternative)[1]
        scroll = self.details.verticalScrollBar().value()
        self.details.setHtml(variant_details_html(model, variant, fit, state, theme, alternative, conversion,
                                                  self.remote))
        self.details.verticalScrollBar().setValue(scroll)
        installed = state is InstallState.INSTALLED
        self.download_button.setEnabled(not installed)
        self.download_button.setText("Installed" if installed else "Download")
        gptq = variant.format == "gptq"
        self.chat_button.setVisible(variant.runnable or conversion is not None)
        self.chat_button.setEnabled((installed and variant.runnable) or conversion is not None)
        self.convert_button.setVisible(gptq)
        self.convert_button.setEnabled(gptq and conversion is None)
        self.convert_button.setText("Converted for llama.cpp" if conversion else "Download and convert for llama.cpp")
        self.alternative_button.setVisible(alternative is not None)
        self.alternative_button.setEnabled(alternative is not None)
        self.remove_button.setVisible(model.imported)
        self.remove_button.setEnabled(model.imported)

    def _download(self) -> None:
        if self._selected:
            variant = self._selected[1]
            self.context.events.download_requested.emit(variant.id)
            self.context.events.status_message.emit(f"Queued {variant.label} of {self._selected[0].name}")

    def _convert(self) -> None:
        if self._selected:
            model, variant = self._selected
            self.context.events.convert_requested.emit(variant.id)
            self.context.events.status_message.emit(f"Queued {variant.label} of {model.name} for conversion")

    def _chat(self) -> None:
        if self._selected:
            variant = self._selected[1]
            conversion = self.source.row_info(variant.id).conversion
            path = conversion.path if conversion else variant_files(self.context.dirs.models, variant)[0]
            self.context.events.chat_requested.emit(str(path))
            self.context.events.navigate.emit("chat")

    def _show_alternative(self) -> None:
        if self._selected and self._selected[1].alternative:
            self.select_variant(self._selected[1].alternative)

    def select_variant(self, variant_id: str) -> bool:
        """Select a variant by id, clearing filters that would hide it."""
        row = self.source.row_of(variant_id)
        if row < 0:
            return False
        if not self.tree.index_of_variant(variant_id).isValid():
            self.search.clear()
            self.format_box.setCurrentIndex(0)
            self.bits_box.setCurrentIndex(0)
            self.size_box.setCurrentIndex(0)
            self.fits_box.setChecked(False)
        index = self.tree.index_of_variant(variant_id)
        self.table.setCurrentIndex(index)
        self.table.scrollTo(index)
        return True

    def _update_subtitle(self) -> None:
        total = self.source.rowCount()
        shown = self.proxy.rowCount()
        models = len(self.context.catalog.models)
        counts = f"{total} variants of {models} models" if shown == total else f"{shown} of {total} variants"
        hw = self.source.hardware
        machine = f"This machine: {hw.summary()}" if hw else "Checking this machine's memory…"
        self.subtitle.setText(f"{counts} · {machine}")
