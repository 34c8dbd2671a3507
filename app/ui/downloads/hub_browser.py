"""The "Get from the Hub" card: type REPO[:BRANCH], pick a branch, tick files, download them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
)

from app.errors import HearthError
from app.hub.listing import HubFile, RepoListing, list_branches, list_files
from app.hub.plan import DownloadRequest
from app.hub.refs import parse_repo_ref
from app.ui.theme import SPACE_L, SPACE_M, SPACE_S, named
from app.ui.workers import Lane, LatestWorker
from app.units import human_size

AnyIndex = QModelIndex | QPersistentModelIndex


class HubLookup(QObject):
    """Fetches branches and file lists off the GUI thread; results arrive as signals on the GUI thread.

    Signals:
        listed(object, object): the list of Branch and the RepoListing of the chosen branch.
        failed(str): why the lookup failed, in words for the user.
    """

    listed = Signal(object, object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._worker: LatestWorker[tuple[Any, ...]] = LatestWorker(self._answer, parent=self, lane=Lane.WAITS)

    def start(self, repo: str, revision: str | None) -> None:
        """Look ``repo`` up; an older lookup still running is ignored when it answers."""
        def work() -> tuple[Any, ...]:
            try:
                branches = list_branches(repo)
                chosen = revision or (branches[0].name if branches else "main")
                return self.listed, branches, list_files(repo, chosen)
            except HearthError as exc:
                return self.failed, str(exc)
            except Exception as exc:  # never a traceback in the GUI
                return self.failed, f"could not list {repo}: {exc}"

        self._worker.submit(work)

    @staticmethod
    def _answer(outcome: tuple[Any, ...]) -> None:  # the GUI thread, the newest lookup only
        signal, *args = outcome
        signal.emit(*args)


class HubFilesModel(QAbstractTableModel):
    """A branch's files with a tick box each: file, size, sha256."""

    HEADERS = ("File", "Size", "SHA256")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.listing: RepoListing | None = None
        self._files: list[HubFile] = []
        self._checked: set[str] = set()

    def set_listing(self, listing: RepoListing | None) -> None:
        self.beginResetModel()
        self.listing = listing
        self._files = [f for f in listing.files if f.name != ".gitattributes"] if listing else []
        ggufs = [f.path for f in self._files if ".gguf" in f.name]
        # GGUF repos hold many quants: tick none. A GPTQ branch is one model: tick all.
        self._checked = set() if ggufs else {f.path for f in self._files}
        self.endResetModel()

    def checked(self) -> list[HubFile]:
        return [f for f in self._files if f.path in self._checked]

    def all_checked(self) -> bool:
        return bool(self._files) and len(self._checked) == len(self._files)

    def set_checked(self, path: str, on: bool) -> None:
        row = next(i for i, f in enumerate(self._files) if f.path == path)
        self.setData(self.index(row, 0), Qt.CheckState.Checked if on else Qt.CheckState.Unchecked,
                     Qt.ItemDataRole.CheckStateRole)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._files)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(self.HEADERS):
            return self.HEADERS[section]
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsUserCheckable if index.isValid() and index.column() == 0 else base

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._files)):
            return None
        f = self._files[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (f.path, human_size(f.size), (f.sha256 or f"git {f.blob_id}")[:16] + "…")[column]
        if role == Qt.ItemDataRole.ToolTipRole and column == 2:
            return f.sha256 or f"git blob {f.blob_id} (not an LFS file)"
        if role == Qt.ItemDataRole.CheckStateRole and column == 0:
            return Qt.CheckState.Checked if f.path in self._checked else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def setData(self, index: AnyIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or index.column() != 0 or role != Qt.ItemDataRole.CheckStateRole:
            return False
        path = self._files[index.row()].path
        on = Qt.CheckState(value) == Qt.CheckState.Checked if not isinstance(value, bool) else value
        (self._checked.add if on else self._checked.discard)(path)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.CheckStateRole])
        return True


class HubBrowser(QFrame):
    """Look up any Hub repo, choose a branch and files, and ask for them to be downloaded.

    Signals:
        download_requested(object): a DownloadRequest for the ticked files.
    """

    download_requested = Signal(object)

    def __init__(self, parent: QObject | None = None, on_import: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.setObjectName("Card")
        self.lookup = HubLookup(self)
        self.files = HubFilesModel(self)
        self.input = named(QLineEdit(), "SearchBox")
        self.input.setPlaceholderText("Any Hugging Face repo: OWNER/NAME, OWNER/NAME:BRANCH or a huggingface.co link")
        self.look_up_button = QPushButton("Look up")
        self.import_button = QPushButton("Import .gguf…")
        self.branch_box = QComboBox()
        self.branch_box.setMinimumWidth(220)
        self.branch_box.setEnabled(False)
        self.status = named(QLabel("Branches and files appear here, with sizes and checksums."), "Muted")
        self.status.setWordWrap(True)
        self.table = named(QTableView(), "HubFiles")
        self.table.setModel(self.files)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setShowGrid(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(28)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.resizeSection(1, 96)
        header.resizeSection(2, 150)
        self.table.setMaximumHeight(190)
        self.table.hide()
        self.download_button = named(QPushButton("Download"), "Primary")
        self.download_button.setEnabled(False)
        self._layout()
        self.input.returnPressed.connect(self.look_up)
        self.look_up_button.clicked.connect(self.look_up)
        self.branch_box.activated.connect(self._branch_chosen)
        self.lookup.listed.connect(self._listed)
        self.lookup.failed.connect(self._failed)
        self.files.dataChanged.connect(self._update_button)
        self.files.modelReset.connect(self._update_button)
        self.download_button.clicked.connect(self._download)
        if on_import is not None:
            self.import_button.clicked.connect(on_import)

    def _layout(self) -> None:
        top = QHBoxLayout()
        top.setSpacing(SPACE_S)
        top.addWidget(self.input, 1)
        top.addWidget(self.look_up_button)
        top.addWidget(self.import_button)
        bottom = QHBoxLayout()
        bottom.setSpacing(SPACE_S)
        bottom.addWidget(QLabel("Branch"))
        bottom.addWidget(self.branch_box)
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.download_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(SPACE_L, SPACE_M, SPACE_L, SPACE_M)
        layout.setSpacing(SPACE_S)
        layout.addLayout(top)
        layout.addWidget(self.table)
        layout.addLayout(bottom)

    # -- lookups --------------------------------------------------------------
    def look_up(self) -> None:
        try:
            ref = parse_repo_ref(self.input.text())
        except HearthError as exc:
            self._failed(str(exc))
            return
        self._start(ref.repo, ref.revision)

    def _start(self, repo: str, revision: str | None) -> None:
        self.status.setText(f"Looking up {repo}{':' + revision if revision else ''}…")
        self.status.setProperty("error", False)
        self.download_button.setEnabled(False)
        self.lookup.start(repo, revision)

    def _branch_chosen(self, _index: int) -> None:
        listing = self.files.listing
        branch = self.branch_box.currentText()
        if listing is not None and branch and branch != listing.revision:
            self._start(listing.repo, branch)

    def _listed(self, branches: list[Any], listing: RepoListing) -> None:
        self.branch_box.clear()
        for branch in branches:
            self.branch_box.addItem(branch.name)
        self.branch_box.setCurrentText(listing.revision)
        self.branch_box.setEnabled(len(branches) > 1)
        self.files.set_listing(listing)
        self.table.show()
        self.status.setText(f"{listing.repo}:{listing.revision} · {len(listing.files)} files · "
                            f"{human_size(listing.total_size)} · {len(branches)} branches")

    def _failed(self, message: str) -> None:
        self.status.setText(message[:1].upper() + message[1:])
        self.status.setProperty("error", True)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    def _update_button(self, *_args: object) -> None:
        chosen = self.files.checked()
        self.download_button.setEnabled(bool(chosen))
        size = sum(f.size for f in chosen)
        self.download_button.setText(f"Download {human_size(size)}" if chosen else "Download")

    def _download(self) -> None:
        listing = self.files.listing
        chosen = self.files.checked()
        if listing is None or not chosen:
            return
        files = () if self.files.all_checked() else tuple(f.path for f in chosen)
        self.download_requested.emit(DownloadRequest(listing.repo, listing.revision, files=files,
                                                     size_hint=sum(f.size for f in chosen)))
