"""The Chat page: conversations on the left, the model bar, the conversation and the composer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QStackedWidget, QVBoxLayout, QWidget

from app.chats.records import Chat, StoredMessage
from app.chats.reply import ReplyWriter
from app.chats.store import ChatStore, ChatStoreError
from app.conversation.conversation import Conversation
from app.engine.chat_format import ChatFormat
from app.engine.protocol import SamplingSettings
from app.engine.sampling import MergedSampling, sampling_values
from app.errors import HearthError
from app.templates.prompt import TemplateRefusal
from app.ui.chat.banner import Banner
from app.ui.chat.chat_models import ChatModels
from app.ui.chat.composer import Composer
from app.ui.chat.conversation_view import ConversationView
from app.ui.chat.messages import MessageListModel
from app.ui.chat.model_bar import ModelBar
from app.ui.chat.reply_stream import ReplyStream
from app.ui.chat.settings_panel import ChatSettingsPanel
from app.ui.chat.sidebar import Sidebar
from app.ui.chat.welcome import WelcomeState
from app.ui.context import AppContext
from app.ui.engine.engine_link import EngineLink
from app.ui.theme import SPACE_L, SPACE_M, SPACE_XL, Theme


class ChatPage(QWidget):
    """Lays out the chat list, model bar, conversation and composer, and wires them to a
    :class:`~app.conversation.conversation.Conversation` (the chat's rules), the models
    (:class:`ChatModels`), the reply on screen (:class:`ReplyStream`) and the process's engine."""

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.setObjectName("ChatPage")
        self.context = context
        # The window still works when the chat file cannot be opened: chats live in memory until it is fixed.
        self.store: ChatStore = context.services.chats
        store_problem = context.services.chat_store_problem
        self.engine = EngineLink(self, controller=context.services.engine)
        self.conversation = Conversation(self.store)
        self.last_prompt = ""
        theme = context.theme.theme

        self.sidebar = Sidebar(self.store, theme)
        self.model_bar = ModelBar(theme)
        self.messages = MessageListModel(self)
        self.view = ConversationView(theme)
        self.view.setModel(self.messages)
        self.welcome = WelcomeState()
        self.center = QStackedWidget()
        self.center.addWidget(self.welcome)
        self.center.addWidget(self.view)
        self.composer = Composer()
        self.settings = ChatSettingsPanel()
        self.settings.hide()
        self.banner = Banner()
        # Offered when the model's template refuses the conversation (a system role, say).
        self.remedy_button = self.banner.remedy_button

        conversation = QWidget()
        conversation.setObjectName("Conversation")
        column = QVBoxLayout(conversation)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.model_bar)
        column.addWidget(self.banner)
        column.addWidget(self.center, 1)
        composer_row = QHBoxLayout()
        composer_row.setContentsMargins(SPACE_XL, SPACE_M, SPACE_XL, SPACE_L)
        composer_row.addStretch(1)
        composer_row.addWidget(self.composer, 40)
        composer_row.addStretch(1)
        self.composer.setMaximumWidth(840)
        column.addLayout(composer_row)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.sidebar)
        layout.addWidget(conversation, 1)
        layout.addWidget(self.settings)

        self.models = ChatModels(context, self.engine, self.model_bar, self.welcome, self)
        self.stream = ReplyStream(self.engine, self.messages, self.view, self)
        self._wire()
        self.new_chat()
        latest = self.store.list_chats(limit=1)
        if latest:
            self.open_chat(latest[0].id)
        if store_problem:
            self.show_error(store_problem)

    # -- wiring -----------------------------------------------------------------------------

    def _wire(self) -> None:
        events = self.context.events
        self.sidebar.chat_selected.connect(self.open_chat)
        self.sidebar.new_chat_requested.connect(self.new_chat)
        self.sidebar.delete_requested.connect(self.delete_chat)
        self.sidebar.chat_restored.connect(self.open_chat)
        self.model_bar.load_requested.connect(self.load_model)
        self.model_bar.unload_requested.connect(self.engine.unload)
        self.model_bar.cancel_requested.connect(self.engine.cancel_load)
        self.banner.remedy_chosen.connect(self.apply_remedy)
        self.models.error.connect(self.show_error)
        self.models.ready.connect(self.hide_error)
        self.models.send.connect(self.send)
        self.models.unsent.connect(self._unsent)
        self.models.format_ready.connect(self._format_ready)
        self.stream.started.connect(lambda: self.composer.set_generating(True))
        self.stream.finished.connect(self._reply_finished)
        self.stream.threads.connect(self.model_bar.show_threads)
        self.engine.failed.connect(lambda _request, message: self.show_error(message))
        self.model_bar.model_chosen.connect(self._model_chosen)
        self.model_bar.settings_toggled.connect(self._toggle_settings)
        self.settings.closed.connect(lambda: self.model_bar.settings_button.setChecked(False))
        self.settings.system_message_changed.connect(self._system_changed)
        self.settings.sampling_changed.connect(self._sampling_changed)
        loading = self.settings.load_section  # how the picked model loads; Reload applies it to the loaded one
        loading.reload_requested.connect(self.load_model)
        self.engine.loaded.connect(lambda info: loading.set_loaded(info.path))
        self.engine.unloaded.connect(lambda: loading.set_loaded(None))
        self.composer.send_requested.connect(self.send)
        self.composer.stop_requested.connect(self.stop)
        self.composer.escaped.connect(self.escape)
        self.welcome.navigate.connect(events.navigate)
        self.welcome.prompt_chosen.connect(self.send)
        delegate = self.view.message_delegate
        delegate.action_requested.connect(self._row_action)
        delegate.code_copied.connect(self._copy_code)
        delegate.link_activated.connect(lambda href: QDesktopServices.openUrl(QUrl(href)))
        events.chat_requested.connect(self.chat_with)
        events.installed_changed.connect(self.models.rescan)
        self.context.theme.changed.connect(self._retheme)
        scope = Qt.ShortcutContext.WidgetWithChildrenShortcut
        QShortcut(QKeySequence("Ctrl+N"), self, self.new_chat, context=scope)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.escape, context=scope)

    def _retheme(self, theme: Theme) -> None:
        self.view.message_delegate.set_theme(theme)
        self.sidebar.set_theme(theme)
        self.model_bar.set_theme(theme)
        self.view.doItemsLayout()

    # -- models -----------------------------------------------------------------------------

    def refresh_models(self) -> None:
        """Scan the models folder again (off the GUI thread); the bar and the welcome follow."""
        self.models.rescan()

    def chat_format(self, path: str, *, quiet: bool = False) -> ChatFormat | None:
        return self.models.chat_format(path, quiet=quiet)

    def load_model(self, path: str) -> None:
        self._end_generation()
        self.models.load(path)

    def _model_chosen(self, path: str) -> None:
        self.models.read_ahead(path)
        if self.chat is not None:
            self._save_chat_model(path)
        self._show_settings_for_chat()

    def _save_chat_model(self, path: str) -> None:
        if self.chat is not None:
            self.conversation.set_model(path, self.model_bar.current_name())

    def _format_ready(self, path: str) -> None:
        if path == self.model_bar.current_path():
            self._show_settings_for_chat()  # the model's defaults and the prompt preview, now known

    def _unsent(self, text: str) -> None:
        if not self.composer.text():
            self.composer.set_text(text)  # the message waits in the box; nothing is lost

    def chat_with(self, path: str) -> None:
        """Another page asked to chat with this model file: a new chat, model loaded."""
        self.context.events.navigate.emit("chat")
        self.new_chat()
        if self.models.offer(path):
            self.load_model(path)
        else:
            self.show_error(f"{path} is not an installed model Hearth can run")

    # -- chats ------------------------------------------------------------------------------

    def _end_generation(self) -> None:
        """Leaving the chat mid-reply: stop it and save it as stopped right away."""
        self.stream.end()

    # The chat in view (None: a draft, stored with its first message).
    @property
    def chat(self) -> Chat | None:
        return self.conversation.chat

    @chat.setter
    def chat(self, chat: Chat | None) -> None:
        self.conversation.chat = chat

    @property
    def writer(self) -> ReplyWriter | None:
        """The reply streaming now (its text as saved in batches), if any."""
        return self.stream.reply.writer if self.stream.reply is not None else None

    def new_chat(self) -> None:
        """A fresh, unsaved chat: it is stored when its first message is sent."""
        self._end_generation()
        self.conversation = Conversation(self.store)
        self._cancel_edit()
        self.messages.set_messages([])
        self.center.setCurrentWidget(self.welcome)
        self.sidebar.select(None)
        self._show_settings_for_chat()
        self.composer.edit.setFocus()

    def open_chat(self, chat_id: int) -> None:
        if self.chat is not None and self.chat.id == chat_id and self.generating:
            return  # clicking the chat that is streaming does not stop it
        self._end_generation()
        try:
            self.conversation = Conversation.open(self.store, chat_id)
        except ChatStoreError as exc:
            self.show_error(str(exc))
            return
        self._cancel_edit()
        self.messages.set_messages(list(self.conversation.messages))
        self.center.setCurrentWidget(self.view if self.messages.rowCount() else self.welcome)
        self.view.scroll_to_end()
        self.sidebar.select(chat_id)
        path = self.conversation.settings.model_path
        if path is not None:
            self.model_bar.select(path)
        self._show_settings_for_chat()

    def delete_chat(self, chat_id: int) -> None:
        """Delete at once; the sidebar offers Undo, which restores it with its messages."""
        if self.chat is not None and self.chat.id == chat_id:
            self._end_generation()
        try:
            self.sidebar.delete_chat(chat_id)
        except ChatStoreError as exc:
            self.show_error(str(exc))
            return
        if self.chat is not None and self.chat.id == chat_id:
            self.new_chat()
        self.sidebar.refresh(self.chat.id if self.chat else None)

    # -- settings ---------------------------------------------------------------------------

    def _toggle_settings(self, visible: bool) -> None:
        self.settings.setVisible(visible)
        if visible:
            self._show_settings_for_chat()

    def _model_defaults(self) -> tuple[str | None, dict[str, float | int]]:
        return self.models.defaults(self.model_bar.current_path())

    def _sampling(self) -> MergedSampling:
        """The chat's sampling over the model's defaults; a bad stored value is named in the banner."""
        merged = self.conversation.sampling(self._model_defaults()[1])
        if merged.problems:
            self.show_error(f"{merged.problems[0]}; the value before it is used.")
        return merged

    def _show_settings_for_chat(self) -> None:
        if self.settings.isHidden():
            return  # filled in when the panel opens (reading the model's defaults costs a file read)
        default_system = self._model_defaults()[0]
        system = self.chat.system_message if self.chat else None
        self.settings.show_chat(system, default_system, self._sampling().settings)
        self.settings.load_section.show_model(self.model_bar.current_path())
        self.settings.show_prompt(self.last_prompt or self._preview_prompt())

    def _system_changed(self, value: str | None) -> None:
        self.conversation.set_system_message(value)
        self.settings.show_prompt(self._preview_prompt())

    def _sampling_changed(self, sampling: SamplingSettings) -> None:
        merged = self.conversation.set_sampling(sampling_values(sampling))
        if merged.problems:
            self.show_error(f"{merged.problems[0]}; the last good value is kept.")

    def system_message(self) -> str | None:
        """The chat's own system message, else the model's default."""
        return self.conversation.system_message(self._model_defaults()[0])

    def _prompt_format(self, *, quiet: bool = False) -> ChatFormat | None:
        path = self.engine.info.path if self.engine.info else self.model_bar.current_path()
        return self.chat_format(path, quiet=quiet) if path else None

    def build_prompt(
        self, history: list[StoredMessage] | None = None, *, quiet: bool = False,
        continuing: StoredMessage | None = None,
    ) -> tuple[str, ChatFormat] | None:
        """The prompt for the chat (or for ``history``, by the same rules) in the model's format."""
        chat_format = self._prompt_format(quiet=quiet)
        if chat_format is None:
            return None
        return self.conversation.build_prompt(chat_format, continuing=continuing, messages=history), chat_format

    def _preview_prompt(self) -> str:
        try:
            built = self.build_prompt(quiet=True)
        except HearthError as exc:
            return f"(the prompt cannot be built: {exc})"
        return built[0] if built else "(pick a model to see its prompt)"

    # -- the conversation -------------------------------------------------------------------

    @property
    def generating(self) -> bool:
        return self.stream.generating

    def send(self, text: str) -> None:
        """Save the user's message, then ask the model for a reply."""
        if self.generating or not text.strip():
            return
        path = self.model_bar.current_path()
        if path is None and self.models.scanning:
            self.models.send_after_scan(text)  # the models folder is still being scanned
            return
        if path is None:
            self.show_error("No model is installed yet: install the starter model with "
                            "`hearth starter`, or download one from the Catalogue.")
            return
        if self.engine.info is None or self.engine.info.path != path:
            self.models.send_when_loaded(path, text)
            return
        editing = self.conversation.edit_position
        message = self.conversation.add_user(text, model_name=self.model_bar.current_name() or Path(path).name,
                                             model_path=path)
        if editing is not None:
            self.messages.remove_from(editing)
            self._cancel_edit()
        self.messages.append(message)
        self.center.setCurrentWidget(self.view)
        self.view.scroll_to_end()
        self._start_reply()
        self.conversation.refresh()
        if self.chat is not None:
            self.sidebar.refresh(self.chat.id)

    def _start_reply(self, continuing: StoredMessage | None = None) -> None:
        """Ask for a new reply, or (``continuing``) for more of an interrupted or stopped one."""
        assert self.chat is not None
        try:
            built = self.build_prompt(continuing=continuing)
        except TemplateRefusal as refusal:
            if refusal.remedy is None:
                self.show_error(str(refusal))
            else:
                self.show_error(f"This model's prompt template does not accept the conversation as it is "
                                f"({refusal.reason}).", remedy=refusal.remedy)
            return
        except HearthError as exc:
            self.show_error(str(exc))
            return
        if built is None or self.engine.info is None:
            return
        prompt, chat_format = built
        self.hide_error()
        sampling = self._sampling().settings
        reply = self.conversation.start_reply(self.model_bar.current_name(), continuing=continuing,
                                              on_error=self._save_failed)
        self.last_prompt = prompt
        self.settings.show_prompt(prompt)
        self.stream.start(reply, prompt, chat_format.stop, sampling, str(self.chat.id),
                          continuing=continuing is not None)

    def _reply_finished(self, _message: StoredMessage | None) -> None:
        self.composer.set_generating(False)
        if self.chat is not None:
            self.conversation.refresh()
            self.sidebar.refresh(self.chat.id)

    def stop(self) -> None:
        """Stop the reply (closed as stopped even if a hung worker never answers)."""
        if self.generating and not self.stream.stopping:
            self.composer.button.setEnabled(False)
            self.stream.stop()

    def escape(self) -> None:
        if self.generating:
            self.stop()
        elif self.conversation.edit_position is not None:
            self._cancel_edit()
            self.composer.set_text("")

    def regenerate(self) -> None:
        """Replace the last reply with a new one."""
        if self.generating or self.chat is None:
            return
        last = self.conversation.last_reply()
        if last is None:
            return
        self.conversation.drop_last_reply()
        self.messages.remove_from(last.position)
        if self.engine.info is None:
            self.show_error("Load a model to regenerate the reply.")
            return
        self._start_reply()

    def continue_reply(self) -> None:
        """Carry on the last reply (interrupted or stopped) from its stored text."""
        if self.generating or self.chat is None:
            return
        last = self.conversation.continuable()
        if last is None:
            return
        if self.engine.info is None:
            self.show_error("Load a model to continue the reply.")
            return
        self._start_reply(continuing=last)

    def edit_message(self, row: int) -> None:
        """Put a user message back in the composer; sending replaces it and what followed."""
        index = self.messages.index(row)
        message: StoredMessage | None = index.data(Qt.ItemDataRole.UserRole + 1)
        if message is None or self.generating or not self.conversation.begin_edit(message):
            return
        self.composer.set_text(message.content)
        self.composer.show_editing(True)
        self.composer.edit.setFocus()

    def _cancel_edit(self) -> None:
        self.conversation.cancel_edit()
        self.composer.show_editing(False)

    def _row_action(self, action: str, row: int) -> None:
        message: StoredMessage | None = self.messages.index(row).data(Qt.ItemDataRole.UserRole + 1)
        if message is None:
            return
        if action == "copy":
            QGuiApplication.clipboard().setText(message.content)
            self.context.events.status_message.emit("Message copied")
        elif action == "edit":
            self.edit_message(row)
        elif action == "regenerate":
            self.regenerate()
        elif action == "continue":
            self.continue_reply()

    def _copy_code(self, code: str) -> None:
        QGuiApplication.clipboard().setText(code)
        self.context.events.status_message.emit("Code copied")

    # -- errors and shutdown ----------------------------------------------------------------

    def show_error(self, message: str, remedy: str | None = None) -> None:
        self.banner.say(message, remedy)
        self.context.events.status_message.emit(message)

    def _save_failed(self, exc: ChatStoreError) -> None:
        """A reply could not be saved (a full disk): it stays in the window, and is said once."""
        message = (f"{exc}. The reply stays in this window; free some space, and what was saved "
                   "is marked interrupted on the next start.")
        if self.banner.isHidden() or self.banner.text() != message:
            self.show_error(message)

    def hide_error(self) -> None:
        self.banner.clear()

    def apply_remedy(self, remedy: str) -> None:
        """Remember the remedy for this chat, then ask for the reply again."""
        if self.chat is None:
            return
        self.conversation.set_remedy(remedy)
        self.hide_error()
        if not self.generating:
            self._start_reply()

    def shutdown(self) -> None:
        """Window closing: end the reply (saved as stopped) and the engine process (the store is the app's)."""
        self._end_generation()
        self.engine.shutdown()

    def state(self) -> dict[str, Any]:
        """A summary for tests and debugging."""
        return {
            "chat": self.chat.id if self.chat else None,
            "rows": self.messages.rowCount(),
            "generating": self.generating,
            "model": self.engine.info.path if self.engine.info else None,
        }
