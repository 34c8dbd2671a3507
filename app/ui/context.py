"""What every page is given: the catalogue, the user's folders, the theme, and the app-wide events."""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from app.catalog import Catalog
from app.paths import AppDirs
from app.services import AppServices
from app.ui.theme import ThemeManager


class AppEvents(QObject):
    """Signals that cross pages, so that pages never import each other.

    Signals:
        navigate(str): show the page with this key ("chat", "catalog", "downloads", "settings").
        download_requested(str): a catalogue variant id the user asked to download.
        convert_requested(str): a catalogue GPTQ variant id to download and convert for llama.cpp.
        installed_changed(): files in the models folder changed; refresh install states.
        chat_requested(str): path of a local model file the user wants to chat with.
        status_message(str): a short message for the window's status bar.
    """

    navigate = Signal(str)
    download_requested = Signal(str)
    convert_requested = Signal(str)
    installed_changed = Signal()
    chat_requested = Signal(str)
    status_message = Signal(str)


@dataclass
class AppContext:
    """Shared, long-lived objects, created once by the application.

    ``services`` (downloads, conversions, the chat store) are built here when not given, once
    per context; ``app.ui.application`` shuts them down when the window closes.
    """

    catalog: Catalog
    dirs: AppDirs
    theme: ThemeManager
    events: AppEvents
    services: AppServices = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.services is None:
            self.services = AppServices.start(self.dirs)
