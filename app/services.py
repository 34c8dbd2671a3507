"""The long-lived services, built once at start-up and handed to a front end (the window, the API server).

A widget never constructs a queue or a store: it is given these. ``shutdown`` stops them in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from app.catalog.downloads import download_queue
from app.chats.store import ChatStore, ChatStoreError
from app.convert.jobs import ConversionQueue
from app.hub.queue import DownloadQueue, JobState
from app.paths import AppDirs

MAX_ACTIVE_DOWNLOADS = 2


@dataclass
class AppServices:
    """Downloads, conversions and the chat store of one running Hearth.

    ``chat_store_problem`` says why chats live in memory this session (a damaged or unwritable
    file); the window shows it rather than refusing to start.
    """

    dirs: AppDirs
    downloads: DownloadQueue
    conversions: ConversionQueue
    chats: ChatStore
    chat_store_problem: str | None = None
    _closed: bool = field(default=False, repr=False)

    @classmethod
    def start(cls, dirs: AppDirs) -> AppServices:
        downloads = download_queue(dirs.models, max_active=MAX_ACTIVE_DOWNLOADS, store=dirs.data / "downloads.json")
        problem = None
        try:
            chats = ChatStore(dirs.chats_db)
        except ChatStoreError as exc:
            problem = f"{exc} Until then, chats in this window are not saved."
            chats = ChatStore(Path(":memory:"))
        return cls(dirs, downloads, ConversionQueue(downloads), chats, problem)

    def running_downloads(self) -> int:
        """How many downloads are transferring now."""
        return sum(1 for job in self.downloads.jobs() if job.state is JobState.RUNNING)

    def shutdown(self) -> None:
        """Stop conversions, pause downloads (their bytes stay for next time), close the chat store."""
        if self._closed:
            return
        self._closed = True
        self.conversions.shutdown()
        self.downloads.shutdown()
        self.chats.close()
