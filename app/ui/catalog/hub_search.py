"""The "Search the Hub" panel: results of HfApi.list_models, and "Add to catalogue", all off the GUI thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.errors import HearthError
from app.hub.search import SearchResult
from app.ui.theme import SPACE_S, named
from app.ui.workers import Lane, LatestWorker

AnyIndex = QModelIndex | QPersistentModelIndex
HEADERS = ("Repository", "Format", "Downloads", "Likes", "Updated")


class HubWorker(QObject):
    """Runs Hub searches and imports off the GUI thread; a newer search drops an older search's answer
    (and a newer add or remove an older one's).

    Signals:
        searched(list): the SearchResults of the latest search.
        imported(object, str, list): the reloaded Catalog, the new model's id, notes for the user.
        removed(object, str): the reloaded Catalog and the removed model's id.
        failed(str): one line saying what went wrong (offline, unknown repo, not runnable...).
    """

    searched = Signal(list)
    imported = Signal(object, str, list)
    removed = Signal(object, str)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._workers: dict[str, LatestWorker[tuple[Any, ...]]] = {
            kind: LatestWorker(self._answer, parent=self, lane=Lane.WAITS) for kind in ("search", "add", "remove")
        }

    def search(self, query: str, fmt: str | None) -> None:
        from app.hub.search import search_models

        self._run("search", lambda: (self.searched, search_models(query, fmt)))

    def add(self, repo: str) -> None:
        def work() -> tuple[Any, ...]:
            from app.catalog import load_catalog
            from app.catalog.card_import import commit_import, plan_import

            plan = plan_import(repo)
            commit_import(plan)
            return self.imported, load_catalog(), plan.model["id"], plan.notes

        self._run("add", work)

    def remove(self, model_id: str) -> None:
        def work() -> tuple[Any, ...]:
            from app.catalog import load_catalog
            from app.catalog.card_import import remove_model

            remove_model(model_id)
            return self.removed, load_catalog(), model_id

        self._run("remove", work)

    def _run(self, kind: str, work: Callable[[], tuple[Any, ...]]) -> None:
        def outcome() -> tuple[Any, ...]:
            try:
                return work()
            except HearthError as exc:
                return self.failed, str(exc)
            except Exception as exc:  # never a traceback in the GUI
                return self.failed, f"{type(exc).__name__}: {exc}"

        self._workers[kind].submit(outcome)

    @staticmethod
    def _answer(outcome: tuple[Any, ...]) -> None:  # the GUI thread, the newest request of its kind
        signal, *args = outcome
        signal.emit(*args)


def _count(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1_000_000 else f"{n / 1e3:.1f}k" if n >= 1_000 else str(n)


class SearchResultsModel(QAbstractTableModel):
    """One row per Hub search result."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.results: list[SearchResult] = []

    def set_results(self, results: list[SearchResult]) -> None:
        self.beginResetModel()
        self.results = list(results)
        self.endResetModel()

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.results)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and section < len(HEADERS):
            return HEADERS[section]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.results):
            return None
        result = self.results[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            updated = result.last_modified.date().isoformat() if result.last_modified else "–"
            return (result.repo, result.format.upper(), _count(result.downloads), _count(result.likes),
                    updated)[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            if result.runnable:
                return f"{result.repo}: add it to the catalogue to see its variants and whether they fit"
            return f"{result.repo}: {result.format.upper()} weights do not run in llama.cpp"
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in (2, 3):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class HubSearchPanel(QWidget):
    """Search box, format choice, results and "Add to catalogue".

    Signals:
        added(object, str): the reloaded Catalog and the id of the model just added.
    """

    added = Signal(object, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker = HubWorker(self)
        self.results = SearchResultsModel(self)
        self.query = named(QLineEdit(), "SearchBox")  # styled like the catalogue filter box
        self.query.setPlaceholderText("Search the Hub: mistral 7b, llama 3 gguf…")
        self.query.setClearButtonEnabled(True)
        self.format_box = QComboBox()
        for label, value in (("GGUF and GPTQ", None), ("GGUF", "gguf"), ("GPTQ", "gptq")):
            self.format_box.addItem(label, value)
        self.search_button = QPushButton("Search the Hub")
        self.add_button = named(QPushButton("Add to catalogue"), "Primary")
        self.add_button.setEnabled(False)
        self.status = named(QLabel("Find any model on the Hugging Face Hub and add it to your catalogue."), "Muted")
        self.status.setWordWrap(True)
        self.table = named(QTableView(), "HubResults")
        self.table.setModel(self.results)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setShowGrid(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(28)
        header = self.table.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setHighlightSections(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column, width in ((1, 72), (2, 96), (3, 64), (4, 96)):
            header.resizeSection(column, width)
        self.table.hide()

        row = QHBoxLayout()
        row.setSpacing(SPACE_S)
        row.addWidget(self.query, 1)
        row.addWidget(self.format_box)
        row.addWidget(self.search_button)
        row.addWidget(self.add_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(SPACE_S)
        layout.addLayout(row)
        layout.addWidget(self.table)
        layout.addWidget(self.status)

        self.query.returnPressed.connect(self.start_search)
        self.search_button.clicked.connect(self.start_search)
        self.add_button.clicked.connect(self.add_selected)
        self.table.doubleClicked.connect(lambda _index: self.add_selected())
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self.worker.searched.connect(self._searched)
        self.worker.imported.connect(self._imported)
        self.worker.failed.connect(self._failed)
        self._busy = False

    def start_search(self) -> None:
        text = self.query.text().strip()
        if not text:
            self.status.setText("Type a few words to search the Hub.")
            return
        self._set_busy(True, f"Searching the Hub for “{text}”…")
        self.worker.search(text, self.format_box.currentData())

    def selected_repo(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.results.results[rows[0].row()].repo if rows else None

    def add_selected(self) -> None:
        repo = self.selected_repo()
        if repo is None or self._busy:
            return
        self._set_busy(True, f"Reading {repo} on the Hub (model card, branches, GGUF header)…")
        self.worker.add(repo)

    def _searched(self, results: list[SearchResult]) -> None:
        self._set_busy(False, f"{len(results)} models found · pick one and press “Add to catalogue”"
                       if results else "No models on the Hub match that search.")
        self.results.set_results(results)
        self.table.setVisible(bool(results))
        # As tall as the results, up to six rows: the catalogue above keeps its room.
        rows = min(len(results), 6)
        self.table.setFixedHeight(self.table.horizontalHeader().height() + rows * 28 + 4)
        if results:
            self.table.selectRow(0)

    def _imported(self, catalog: object, model_id: str, notes: list[str]) -> None:
        extra = f" · {len(notes)} note{'s' if len(notes) != 1 else ''}: {notes[0]}" if notes else ""
        self._set_busy(False, f"Added {model_id} to your catalogue{extra}")
        self.added.emit(catalog, model_id)

    def _failed(self, message: str) -> None:
        self._set_busy(False, message)

    def _set_busy(self, busy: bool, message: str) -> None:
        self._busy = busy
        self.status.setText(message)
        self.search_button.setEnabled(not busy)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.add_button.setEnabled(not self._busy and self.selected_repo() is not None)
