"""The Downloads page: the Hub browser on top, the queue below, local .gguf import by dialog or drop."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QAbstractItemView, QFileDialog, QLabel, QListView, QVBoxLayout, QWidget

from app.hub.plan import DownloadRequest, request_for_variant
from app.hub.queue import DownloadJob, DownloadQueue, JobState
from app.ui.context import AppContext
from app.ui.convert.panel import ConversionPanel
from app.ui.downloads.delegate import DownloadDelegate
from app.ui.downloads.hub_browser import HubBrowser
from app.ui.downloads.model import DownloadListModel, chat_path
from app.ui.theme import SPACE_L, SPACE_M, SPACE_XL, Theme, named

MAX_ACTIVE = 2
EMPTY_TEXT = ("No downloads yet. Pick a model in the Catalogue, type any Hugging Face repo above, "
              "or drop a .gguf file here to import it.")


class DownloadsPage(QWidget):
    """Every download with its progress, and the ways to start one.

    Listens to ``context.events.download_requested(variant_id)``; emits ``installed_changed()``
    when a download is verified and ``chat_requested(path)`` from a finished row's "Chat with it".
    """

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context
        self.setAcceptDrops(True)
        self.queue = DownloadQueue(context.dirs.models, max_active=MAX_ACTIVE,
                                   store=context.dirs.data / "downloads.json")
        self.model = DownloadListModel(self.queue, self)
        self.browser = HubBrowser(self, on_import=self.choose_import)
        self.conversions = ConversionPanel(context, self.queue, self)
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

        layout = QVBoxLayout(self)
        layout.setContentsMargins(SPACE_XL, SPACE_L, SPACE_XL, SPACE_L)
        layout.setSpacing(SPACE_M)
        heading = QVBoxLayout()
        heading.setSpacing(2)
        heading.addWidget(named(QLabel("Downloads"), "PageTitle"))
        heading.addWidget(self.subtitle)
        layout.addLayout(heading)
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
        self.queue.restore()
        self._update_counts()

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

    def import_files(self, paths: list[Path]) -> list[DownloadJob]:
        return [self.enqueue(DownloadRequest(repo="imported", revision="local", import_from=str(p),
                                             title=f"Import {p.name}")) for p in paths]

    def choose_import(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Import GGUF model files", str(Path.home()),
                                                "GGUF models (*.gguf)")
        self.import_files([Path(f) for f in files])

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
            self.import_files(paths)
            event.acceptProposedAction()

    # -- closing ----------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop conversions and pause running downloads (their bytes stay on disk) so the window can close."""
        self.conversions.shutdown()
        self.queue.shutdown()
