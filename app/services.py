"""The long-lived services, built once at start-up and handed to a front end (the window, the API server).

A widget never constructs a queue or a store: it is given these. ``shutdown`` stops them in order.
"""

from __future__ import annotations

from pathlib import Path

from app.catalog.downloads import download_queue
from app.chats.store import ChatStore, ChatStoreError
from app.convert.jobs import ConversionQueue
from app.engine.controller import EngineController
from app.hub.queue import DownloadQueue, JobState
from app.paths import AppDirs

MAX_ACTIVE_DOWNLOADS = 2


class AppServices:
    """Downloads, conversions, the chat store and the engine of one running Hearth.

    The chat store opens on first use; ``chat_store_problem`` then says why chats live in memory
    this session (a damaged or unwritable file), and the window shows it rather than refusing to start.
    ``engine`` is the process's one :class:`EngineController`; its worker starts on the first load.
    """

    def __init__(self, dirs: AppDirs, downloads: DownloadQueue, conversions: ConversionQueue,
                 chats: ChatStore | None = None) -> None:
        self.dirs = dirs
        self.downloads = downloads
        self.conversions = conversions
        self._chats = chats
        self.engine = EngineController()  # no process yet: the worker starts on the first load
        self.chat_store_problem: str | None = None
        self._closed = False

    @classmethod
    def start(cls, dirs: AppDirs) -> AppServices:
        downloads = download_queue(dirs.models, max_active=MAX_ACTIVE_DOWNLOADS, store=dirs.data / "downloads.json")
        return cls(dirs, downloads, ConversionQueue(downloads))

    @property
    def chats(self) -> ChatStore:
        """The chat store (opened now if it is not open yet)."""
        if self._chats is None:
            try:
                self._chats = ChatStore(self.dirs.chats_db)
            except ChatStoreError as exc:
                self.chat_store_problem = f"{exc} Until then, chats in this window are not saved."
                self._chats = ChatStore(Path(":memory:"))
        return self._chats

    def running_downloads(self) -> int:
        """How many downloads are transferring now."""
        return sum(1 for job in self.downloads.jobs() if job.state is JobState.RUNNING)

    def shutdown(self) -> None:
        """End the engine, stop conversions, pause downloads (their bytes stay for next time), close the
        chat store."""
        if self._closed:
            return
        self._closed = True
        self.engine.close()
        self.conversions.shutdown()
        self.downloads.shutdown()
        if self._chats is not None:
            self._chats.close()
