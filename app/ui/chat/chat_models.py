"""The chat page's models: the list the model bar offers (scanned off the GUI thread), each model's prompt
format (read ahead off the GUI thread), loading one, and a message that waits for the scan or the load."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from PySide6.QtCore import QObject, Signal

from app.engine.chat_format import ChatFormat, resolve_chat_format
from app.engine.protocol import ModelInfo
from app.errors import HearthError
from app.library.installed import InstalledModel, installed_models, remote_models
from app.remote.messages import parse_remote_path
from app.remote.session import RemoteFormat
from app.ui.chat.model_bar import ModelBar
from app.ui.chat.welcome import WelcomeState
from app.ui.context import AppContext
from app.ui.engine.engine_link import EngineLink, describe_load
from app.ui.workers import LatestWorker


class ChatModels(QObject):
    """Keeps the model bar's list, the prompt formats and the load in step with the engine link.

    Signals:
        error(str): something the user must be told (a file that cannot be read or loaded).
        ready(): the model asked for is loaded (the page hides an old error).
        send(str): a message that waited for the model list or for its model to load can be sent now.
        unsent(str): the load failed; the message that waited goes back to the composer.
        format_ready(str): the prompt format of this model file has been read (off the GUI thread).
    """

    error = Signal(str)
    ready = Signal()
    send = Signal(str)
    unsent = Signal(str)
    format_ready = Signal(str)

    def __init__(self, context: AppContext, engine: EngineLink, model_bar: ModelBar, welcome: WelcomeState,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.context, self.engine, self.bar, self.welcome = context, engine, model_bar, welcome
        self._formats: dict[str, ChatFormat] = {}
        self._unreadable: set[str] = set()  # read ahead and failed: said when the chat needs them
        self._reading: str | None = None
        # Model files opened from elsewhere (a file association, "Open with"): offered this session.
        self._opened: list[InstalledModel] = []
        self._waiting: str | None = None  # a message sent before its model was loaded
        self._after_scan: str | None = None  # a message sent before the first scan reported
        self._scanned = False
        self._scan: LatestWorker[list[InstalledModel]] = LatestWorker(self._show, parent=self)
        self._reader: LatestWorker[tuple[str, ChatFormat | None]] = LatestWorker(self._format_read, parent=self)
        self.rescan()
        engine.loaded.connect(self._loaded)
        engine.load_failed.connect(self._load_failed)
        engine.unloaded.connect(self._unloaded)

    # -- the list ---------------------------------------------------------------------------

    @property
    def scanning(self) -> bool:
        """Whether a scan of the models folder has not reported yet."""
        return self._scan.busy

    @property
    def busy(self) -> bool:
        """Whether a scan or a prompt-format read is still under way."""
        return self._scan.busy or self._reader.busy

    def rescan(self) -> None:
        """Scan the models folder (and the endpoints' lists) off the GUI thread; a newer scan supersedes it."""
        catalog, models_dir = self.context.catalog, self.context.dirs.models
        if not self._scanned:
            self.bar.show_scanning()
        self._unreadable.clear()  # a file may have been replaced: read it again when needed
        self._scan.submit(lambda: [*installed_models(catalog, models_dir), *remote_models()])

    def _show(self, models: list[InstalledModel]) -> None:
        """The scan reported: the bar and the welcome list these models (plus files opened this session)."""
        self._scanned = True
        known = {m.path.resolve() for m in models}
        models = [*models, *(m for m in self._opened if m.path.resolve() not in known)]
        self.bar.set_models(models, self.bar.current_path())
        self.read_ahead(self.bar.current_path())
        starter = self.context.catalog.starter()
        self.welcome.set_models([m.name for m in models], starter.name if starter else None)
        text, self._after_scan = self._after_scan, None
        if text is not None:
            self.send.emit(text)

    def send_after_scan(self, text: str) -> None:
        """Keep ``text`` until the models are known (the page sends it then, or says none is installed)."""
        self._after_scan = text

    def offer(self, path: str) -> bool:
        """Select ``path`` in the bar, listing it at once if the last scan has not seen it yet (a file
        just downloaded, or opened from elsewhere); False when it is no model file Hearth can run."""
        file = Path(path)
        if self.bar.select(path):
            return True
        if parse_remote_path(path) is not None or file.suffix.lower() != ".gguf" or not file.is_file():
            return False
        if self.context.dirs.models not in file.parents:
            entry = InstalledModel(file, file.stem, "opened file")  # offered for the rest of the session
            self._opened.append(entry)
        else:
            entry = InstalledModel(file, file.stem, "")  # named properly by the scan that follows
        self.bar.set_models([*self.bar.models(), entry], path)
        self.rescan()
        return self.bar.select(path)

    # -- prompt formats ---------------------------------------------------------------------

    def chat_format(self, path: str, *, quiet: bool = False) -> ChatFormat | None:
        """The model's prompt format.

        ``quiet`` (a preview, the settings panel's defaults): only what has been read; an unread file
        is read off the GUI thread and ``format_ready`` says when. Otherwise (a reply is about to be
        asked for) the file is read now if it must be, and an unreadable one is reported.
        """
        remote = parse_remote_path(path)
        if remote is not None:  # the endpoint applies its own template to the messages
            return cast(ChatFormat, RemoteFormat(f"remote: {remote[0]}/{remote[1]}"))
        if quiet and path not in self._formats:
            self.read_ahead(path)
            return None
        if path not in self._formats:
            try:
                self._formats[path] = resolve_chat_format(
                    Path(path), self.context.catalog, models_dir=self.context.dirs.models
                )
            except HearthError as exc:
                self.error.emit(str(exc))
                return None
        return self._formats[path]

    def defaults(self, path: str | None) -> tuple[str | None, dict[str, float | int]]:
        """The model's default system message and sampling (none when it cannot be read)."""
        chat_format = self.chat_format(path, quiet=True) if path else None
        if chat_format is None:
            return None, {}
        return chat_format.system_message, dict(chat_format.model.sampling) if chat_format.model else {}

    def read_ahead(self, path: str | None) -> None:
        """Read the chosen model's header and template off the GUI thread, before the chat needs them."""
        if path is None or path in self._formats or parse_remote_path(path) is not None:
            return  # (a remote model's endpoint applies its own template: nothing to read)
        if path in self._unreadable or (path == self._reading and self._reader.busy):
            return
        catalog, models_dir = self.context.catalog, self.context.dirs.models
        self._reading = path

        def read() -> tuple[str, ChatFormat | None]:
            try:
                return path, resolve_chat_format(Path(path), catalog, models_dir=models_dir)
            except HearthError:
                return path, None  # said when the chat needs it (chat_format without quiet)
        self._reader.submit(read)

    def _format_read(self, result: tuple[str, ChatFormat | None]) -> None:
        path, chat_format = result
        self._reading = None
        if chat_format is None:
            self._unreadable.add(path)
            return
        self._formats.setdefault(path, chat_format)
        self.format_ready.emit(path)

    # -- loading ----------------------------------------------------------------------------

    def load(self, path: str) -> None:
        self.bar.select(path)
        self.bar.show_loading(self.bar.current_name() or Path(path).name)
        self.engine.load(path)

    def send_when_loaded(self, path: str, text: str) -> None:
        """Keep ``text`` until ``path`` is loaded (loading it now unless a load is under way)."""
        self._waiting = text
        if not self.engine.loading:
            self.load(path)

    def _loaded(self, info: ModelInfo) -> None:
        self.bar.show_loaded(info.path, describe_load(info, self.engine.plan),
                             info.threads.describe() if info.threads else "")
        self.ready.emit()
        text, self._waiting = self._waiting, None
        if text is not None:
            self.send.emit(text)

    def _load_failed(self, message: str) -> None:
        text, self._waiting = self._waiting, None
        if text is not None:
            self.unsent.emit(text)  # the message waits in the box; nothing is lost
        self.bar.show_unloaded("Not loaded")
        self.error.emit(message)

    def _unloaded(self) -> None:
        self.bar.show_unloaded()
