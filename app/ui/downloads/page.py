"""The Downloads page: the Hub browser on top, the queue below, local .gguf import by dialog or drop."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import model_folders
from app.catalog.downloads import request_for_variant
from app.errors import HearthError
from app.hub.account import Account, needs_token
from app.hub.plan import DownloadRequest
from app.hub.queue import DownloadJob, JobState
from app.ui.context import AppContext
from app.ui.convert.panel import ConversionPanel
from app.ui.downloads.delegate import DownloadDelegate
from app.ui.downloads.hub_browser import HubBrowser
from app.ui.downloads.model import DownloadListModel, chat_path
from app.ui.signin import AccountService, SignInDialog
from app.ui.theme import SPACE_L, SPACE_M, SPACE_XL, Theme, named
from app.ui.workers import create_worker
from app.units import human_size

EMPTY_TEXT = ("No downloads yet. Pick a model in the Catalogue, type any Hugging Face repo above, "
              "or drop a .gguf file here to import it.")


class DownloadsPage(QWidget):
    """Every download with its progress, and the ways to start one.

    Listens to ``context.events.download_requested(variant_id)``; emits ``installed_changed()``
    when a download is verified and ``chat_requested(path)`` from a finished row's "Chat with it".

    Signals:
        folder_added(object, list): a models folder (Path) is registered; the GGUF files found in it.
        files_added(list): the files (Paths) now used in place (none when every one was refused).
    """

    folder_added = Signal(object, list)
    files_added = Signal(list)

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context
        self.setAcceptDrops(True)
        self.queue = context.services.downloads
        self.model = DownloadListModel(self.queue, self)
        self._in_place = model_folders.ModelFolders()  # read off the GUI thread, then after each change
        self.browser = HubBrowser(self, on_import=self.choose_import)
        self.conversions = ConversionPanel(context, context.services.conversions, self)
        self.delegate = DownloadDelegate(context.theme.theme, self)
        self.list = named(QListView(), "DownloadList")
        self.list.setModel(self.model)
        self.list.setItemDelegate(self.delegate)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setMouseTracking(True)
        self.subtitle = named(QLabel(), "PageSubtitle")
        self.empty_label = named(QLabel(EMPTY_TEXT), "EmptyState")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.accounts = AccountService(self)
        self.account_label = named(QLabel("Hugging Face: checking…"), "Muted")
        self.account_button = QPushButton("Sign in to Hugging Face…")
        self.folder_button = QPushButton("Add a models folder…")
        self.folder_button.setToolTip("Use the .gguf files of another app (LM Studio, Jan, GPT4All) or any folder "
                                      "where they are: nothing is copied")
        self.sign_in_hint = named(QFrame(), "Card")
        self.sign_in_hint_label = QLabel()
        self.sign_in_hint_label.setWordWrap(True)
        hint_button = named(QPushButton("Sign in…"), "Primary")
        hint_layout = QHBoxLayout(self.sign_in_hint)
        hint_layout.setContentsMargins(SPACE_L, SPACE_M, SPACE_L, SPACE_M)
        hint_layout.addWidget(self.sign_in_hint_label, 1)
        hint_layout.addWidget(hint_button)
        self.sign_in_hint.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(SPACE_XL, SPACE_L, SPACE_XL, SPACE_L)
        layout.setSpacing(SPACE_M)
        heading = QVBoxLayout()
        heading.setSpacing(2)
        heading.addWidget(named(QLabel("Downloads"), "PageTitle"))
        heading.addWidget(self.subtitle)
        top = QHBoxLayout()
        top.addLayout(heading, 1)
        top.addWidget(self.folder_button, 0, Qt.AlignmentFlag.AlignTop)
        account_box = QVBoxLayout()
        account_box.setSpacing(2)
        account_box.addWidget(self.account_button, 0, Qt.AlignmentFlag.AlignRight)
        account_box.addWidget(self.account_label, 0, Qt.AlignmentFlag.AlignRight)
        top.addLayout(account_box)
        layout.addLayout(top)
        layout.addWidget(self.sign_in_hint)
        layout.addWidget(self.browser)
        layout.addWidget(self.conversions)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty_label, 1)

        self.browser.download_requested.connect(self.enqueue)
        self.delegate.action_triggered.connect(self.act)
        self.model.finished.connect(self._finished)
        self.model.states_changed.connect(self._update_counts)
        self.model.rowsInserted.connect(self._update_counts)
        self.model.rowsRemoved.connect(self._update_counts)
        context.events.download_requested.connect(self.download_variant)
        context.theme.changed.connect(self._apply_theme)
        self.folder_button.clicked.connect(lambda: self.add_models_folder())
        self.account_button.clicked.connect(self._account_clicked)
        hint_button.clicked.connect(lambda: self.show_sign_in(self.sign_in_hint_label.text()))
        self.accounts.checked.connect(self._show_account)
        self.accounts.signed_in.connect(self._signed_in)
        self.accounts.check_failed.connect(self._account_unknown)
        self.browser.lookup.failed.connect(self._offer_sign_in)
        self.model.states_changed.connect(self._check_failures)
        create_worker(model_folders.load, self._in_place_read, parent=self)
        self.queue.restore()
        self._update_counts()
        self.accounts.check()

    # -- starting downloads ---------------------------------------------------
    def enqueue(self, request: DownloadRequest) -> DownloadJob:
        job = self.queue.add(request)
        self.context.events.status_message.emit(f"Downloading {job.title}")
        return job

    def download_variant(self, variant_id: str) -> DownloadJob | None:
        try:
            model, variant = self.context.catalog.variant(variant_id)
        except KeyError:
            self.context.events.status_message.emit(f"No variant {variant_id} in the catalogue")
            return None
        job = self.enqueue(request_for_variant(variant, f"{model.name} · {variant.label}"))
        self.context.events.navigate.emit("downloads")
        return job

    def import_files(self, paths: list[Path], in_place: bool = False) -> list[DownloadJob]:
        """Copy the files into the models folder (a queue job each), or use them where they are."""
        if in_place:
            self.use_in_place(paths)  # no queue job: nothing to copy
            return []
        return [self.enqueue(DownloadRequest(repo="imported", revision="local", import_from=str(p),
                                             title=f"Import {p.name}")) for p in paths]

    def use_in_place(self, paths: list[Path]) -> None:
        """Register the files where they are (no copy; each is checked off the GUI thread); they appear in
        the chat's model list once ``files_added`` is emitted."""
        def register() -> tuple[list[Path], list[str], model_folders.ModelFolders]:
            added: list[Path] = []
            problems: list[str] = []
            for path in paths:
                try:
                    added.append(model_folders.add_file(path))
                except HearthError as exc:
                    problems.append(str(exc))
            return added, problems, model_folders.load()

        create_worker(register, self._files_registered, self._registry_failed, parent=self)

    def _in_place_read(self, registered: model_folders.ModelFolders) -> None:
        self._in_place = registered
        self._update_counts()

    def _files_registered(self, outcome: tuple[list[Path], list[str], model_folders.ModelFolders]) -> None:
        added, problems, self._in_place = outcome
        for problem in problems:
            self.context.events.status_message.emit(problem)
        if added:
            self.context.events.installed_changed.emit()
            names = ", ".join(p.name for p in added)
            self.context.events.status_message.emit(f"Using {names} where it is (nothing was copied)")
        self._update_counts()
        self.files_added.emit(added)

    def _registry_failed(self, exc: Exception) -> None:
        """The list of folders and files could not be saved (a full disk, a read-only config folder)."""
        self.context.events.status_message.emit(f"Could not save the list of models used in place: {exc}")

    def ask_in_place(self, paths: list[Path]) -> bool | None:
        """Ask whether to use the files in place or copy them; None when the user cancels."""
        size = sum(p.stat().st_size for p in paths if p.is_file())
        box = QMessageBox(QMessageBox.Icon.Question, "Import GGUF models",
                          f"Use {len(paths)} file{'s' if len(paths) != 1 else ''} ({human_size(size)}) where "
                          f"{'they are' if len(paths) != 1 else 'it is'}, or copy into Hearth's models folder?",
                          QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText("In place saves the disk space; the model disappears from Hearth if the file is "
                               "moved or deleted. A copy is checksummed and independent of the original.")
        in_place = box.addButton("Use in place", QMessageBox.ButtonRole.AcceptRole)
        copy = box.addButton("Copy", QMessageBox.ButtonRole.ActionRole)
        box.setDefaultButton(in_place)
        box.exec()
        clicked = box.clickedButton()
        return True if clicked is in_place else False if clicked is copy else None

    def choose_import(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Import GGUF model files", str(Path.home()),
                                                "GGUF models (*.gguf)")
        self._import_asking([Path(f) for f in files])

    def _import_asking(self, paths: list[Path]) -> None:
        if not paths:
            return
        choice = self.ask_in_place(paths)
        if choice is not None:
            self.import_files(paths, in_place=choice)

    # -- other apps' folders -------------------------------------------------
    def add_models_folder(self, folder: Path | None = None) -> None:
        """Register a folder of GGUF files in place (asks for it when none is given); it is searched off the
        GUI thread, and ``folder_added`` says what it holds."""
        if folder is None:  # the dialog opens in another app's models folder, looked for off the GUI thread
            create_worker(model_folders.suggested_folders, self._choose_models_folder, parent=self)
            return
        self.context.events.status_message.emit(f"Looking for GGUF models in {folder}…")
        target: Path = folder

        def search() -> tuple[list[Path], model_folders.ModelFolders]:
            return model_folders.add_folder(target), model_folders.load()

        create_worker(search, lambda outcome: self._folder_searched(target, *outcome), self._folder_failed,
                      parent=self)

    def _choose_models_folder(self, suggestions: list[Path]) -> None:
        start = suggestions[0] if suggestions else Path.home()
        chosen = QFileDialog.getExistingDirectory(self, "Add a models folder (LM Studio, Jan, any folder)", str(start))
        if chosen:
            self.add_models_folder(Path(chosen))

    def _folder_searched(self, folder: Path, found: list[Path], registered: model_folders.ModelFolders) -> None:
        self._in_place = registered
        self.context.events.installed_changed.emit()
        self.context.events.status_message.emit(
            f"Added {folder}: {len(found)} GGUF model{'s' if len(found) != 1 else ''} found, used where they are")
        self._update_counts()
        self.folder_added.emit(folder, found)

    def _folder_failed(self, exc: Exception) -> None:
        self.context.events.status_message.emit(str(exc) if isinstance(exc, HearthError)
                                                else f"Could not add the folder: {exc}")

    # -- signing in -----------------------------------------------------------
    def show_sign_in(self, reason: str = "") -> SignInDialog:
        """Open the sign-in dialog (not modal: the page keeps working behind it)."""
        dialog = SignInDialog(self.accounts, self, reason)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _account_clicked(self) -> None:
        if self.accounts.account is not None and not self.accounts.account.from_environment:
            self.accounts.sign_out()
            self.context.events.status_message.emit("Signed out of Hugging Face")
        else:
            self.show_sign_in()

    def _show_account(self, signed: Account | None) -> None:
        if signed is None:
            self.account_label.setText("Not signed in: needed only for gated and private models")
            self.account_button.setText("Sign in to Hugging Face…")
            self.account_button.setEnabled(True)
        else:
            self.account_label.setText(signed.label)
            self.account_button.setText("Sign out")
            # A token from HF_TOKEN cannot be signed out of from here.
            self.account_button.setEnabled(not signed.from_environment)

    def _signed_in(self, signed: Account) -> None:
        self._show_account(signed)
        self.sign_in_hint.hide()
        self.context.events.status_message.emit(signed.label)

    def _account_unknown(self, message: str) -> None:
        self.account_label.setText(f"Hugging Face account not checked: {message}")
        self.account_button.setText("Sign in to Hugging Face…")

    def _offer_sign_in(self, message: str) -> None:
        if needs_token(message):
            self.sign_in_hint_label.setText(message[:1].upper() + message[1:])
            self.sign_in_hint.show()

    def _check_failures(self, *_args: object) -> None:
        for row in range(self.model.rowCount()):
            job = self.model.job_at(row)
            if job is not None and job.state is JobState.FAILED and job.error and needs_token(job.error):
                self._offer_sign_in(job.error)
                return

    # -- row buttons ----------------------------------------------------------
    def act(self, job_id: int, action: str) -> None:
        job = self.queue.job(job_id)
        if action == "pause":
            self.queue.pause(job_id)
        elif action in ("resume", "retry"):
            self.queue.resume(job_id)
        elif action == "cancel":
            self.queue.cancel(job_id)
        elif action == "remove":
            self.queue.remove(job_id)
        elif action == "chat" and (path := chat_path(job)):
            self.context.events.chat_requested.emit(path)
            self.context.events.navigate.emit("chat")
        elif action == "folder" and job.paths:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(job.paths[0].parent)))

    def _finished(self, job: DownloadJob) -> None:
        self.context.events.installed_changed.emit()
        self.context.events.status_message.emit(f"Downloaded and verified: {job.title}")

    def _update_counts(self, *_args: object) -> None:
        counts = self.model.counts()
        active = counts[JobState.RUNNING] + counts[JobState.QUEUED]
        parts = [f"{active} active" if active else "Nothing downloading"]
        if counts[JobState.PAUSED]:
            parts.append(f"{counts[JobState.PAUSED]} paused")
        if counts[JobState.FAILED]:
            parts.append(f"{counts[JobState.FAILED]} failed")
        parts.append(f"models are saved in {self.context.dirs.models}")
        extra = self._in_place
        if extra.folders or extra.files:
            parts.append(f"also using {len(extra.folders)} other folder{'s' if len(extra.folders) != 1 else ''} and "
                         f"{len(extra.files)} file{'s' if len(extra.files) != 1 else ''} in place")
        self.subtitle.setText(" · ".join(parts))
        empty = self.model.rowCount() == 0
        self.empty_label.setVisible(empty)
        self.list.setVisible(not empty)

    def _apply_theme(self, theme: Theme) -> None:
        self.delegate.theme = theme
        self.list.viewport().update()

    # -- drag and drop of .gguf files -----------------------------------------
    @staticmethod
    def _dropped_ggufs(event: QDragEnterEvent | QDropEvent) -> list[Path]:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        return [Path(u.toLocalFile()) for u in urls if u.isLocalFile() and u.toLocalFile().lower().endswith(".gguf")]

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_ggufs(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = self._dropped_ggufs(event)
        if paths:
            self.import_files(paths)  # a drop copies; "Import .gguf…" also offers to use files in place
            event.acceptProposedAction()

    # -- closing ----------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop conversions and pause running downloads (their bytes stay on disk) so the window can close."""
        self.conversions.shutdown()
        self.queue.shutdown()
