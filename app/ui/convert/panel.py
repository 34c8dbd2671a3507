"""The conversions list on the Downloads page: download-and-convert rows with progress, cancel and chat."""

from __future__ import annotations

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QAbstractItemView, QLabel, QListView, QVBoxLayout, QWidget

from app.convert.errors import ConvertError
from app.convert.jobs import ConversionJob, ConversionQueue
from app.convert.sources import source_for_variant
from app.hub.queue import DownloadQueue
from app.ui.context import AppContext
from app.ui.convert.model import ConversionListModel, smaller_choice
from app.ui.downloads.delegate import ROW_HEIGHT, DownloadDelegate
from app.ui.theme import SPACE_S, SPACE_XS, Theme, named

MAX_VISIBLE_ROWS = 2


class ConversionPanel(QWidget):
    """Runs "Download and convert for llama.cpp" requests and shows one card per conversion.

    Listens to ``context.events.convert_requested(variant_id)``; emits ``installed_changed()`` when a
    conversion finishes, ``status_message(str)`` on success or failure, and ``chat_requested(path)``
    from a finished card's "Chat with it". Hidden while there is nothing to show.
    """

    def __init__(self, context: AppContext, downloads: DownloadQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.queue = ConversionQueue(downloads)
        self.model = ConversionListModel(self.queue, self)
        self.delegate = DownloadDelegate(context.theme.theme, self)
        self.list = named(QListView(), "DownloadList")
        self.list.setModel(self.model)
        self.list.setItemDelegate(self.delegate)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setMouseTracking(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(SPACE_XS)
        layout.addWidget(named(QLabel("Conversions for llama.cpp"), "SectionTitle"))
        layout.addWidget(self.list)

        self.delegate.action_triggered.connect(self.act)
        self.model.finished.connect(self._finished)
        self.model.failed.connect(self._failed)
        self.model.rowsInserted.connect(self._resize)
        self.model.rowsRemoved.connect(self._resize)
        context.events.convert_requested.connect(self.convert_variant)
        context.theme.changed.connect(self._apply_theme)
        self._resize()

    def convert_variant(self, variant_id: str) -> ConversionJob | None:
        """Queue the variant's branch download and its conversion; show the Downloads page."""
        try:
            model, variant = self.context.catalog.variant(variant_id)
            source = source_for_variant(model, variant, self.context.dirs.models)
        except KeyError:
            self.context.events.status_message.emit(f"No variant {variant_id} in the catalogue")
            return None
        except ConvertError as exc:
            self.context.events.status_message.emit(str(exc))
            return None
        job = self.queue.convert(source)
        self.context.events.status_message.emit(f"Downloading {job.title}, then converting it for llama.cpp")
        self.context.events.navigate.emit("downloads")
        return job

    def act(self, job_id: int, action: str) -> None:
        job = self.queue.job(job_id)
        if action == "cancel":
            self.queue.cancel(job_id)
        elif action == "retry":
            self.queue.retry(job_id)
        elif action == "remove":
            self.queue.remove(job_id)
        elif action == "chat" and job.result is not None:
            self.context.events.chat_requested.emit(str(job.result.path))
            self.context.events.navigate.emit("chat")
        elif action == "smaller":
            smaller = smaller_choice(job)
            if smaller is not None:
                self.queue.convert(job.source, smaller.out_type)
                self.context.events.status_message.emit(
                    f"Converting {job.title} again as {smaller.out_type.upper()}: smaller, requantised")
        elif action == "folder" and job.result is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(job.result.path.parent)))

    def _finished(self, job: ConversionJob) -> None:
        self.context.events.installed_changed.emit()
        result = job.result
        how = f" ({result.quality_text})" if result is not None and result.quality_text else ""
        self.context.events.status_message.emit(f"Converted for llama.cpp: {job.title}{how}")

    def _failed(self, job: ConversionJob) -> None:
        self.context.events.status_message.emit(f"Could not convert {job.title}: {job.error}")

    def _resize(self, *_args: object) -> None:
        rows = self.model.rowCount()
        self.list.setFixedHeight(min(rows, MAX_VISIBLE_ROWS) * ROW_HEIGHT + SPACE_S)
        self.setVisible(rows > 0)

    def _apply_theme(self, theme: Theme) -> None:
        self.delegate.theme = theme
        self.list.viewport().update()

    def shutdown(self) -> None:
        """Stop a running conversion (its partial files are removed) so the window can close."""
        self.queue.shutdown()
