"""One chat's rules, without Qt: what enters the prompt, the system message, edits, and a reply's life.

The window (``app/ui/chat/page.py``), ``hearth chat`` and the API server drive the same object,
so the same chat builds the same prompt byte for byte in each of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from app.chats.records import Chat, StoredMessage, in_history
from app.chats.reply import ReplyWriter
from app.chats.store import ChatStore, ChatStoreError
from app.conversation.prompt import chat_turns
from app.conversation.settings import ChatSettings, effective_system
from app.engine.chat_format import ChatFormat
from app.engine.protocol import GenerationStats
from app.engine.sampling import MergedSampling, sampling_values
from app.templates.prompt import Message


class Reply:
    """A reply as it streams: pieces go to the store in batches; ``finish`` records how it ended."""

    def __init__(self, conversation: Conversation, message: StoredMessage, writer: ReplyWriter) -> None:
        self.conversation = conversation
        self.message = message
        self.writer = writer
        self.started = time.monotonic()
        self.finished = False

    @property
    def message_id(self) -> int:
        return self.message.id

    @property
    def text(self) -> str:
        return self.writer.text

    def append(self, piece: str) -> None:
        self.writer.append(piece)

    def finish(self, status: str, stats: GenerationStats | None = None) -> StoredMessage:
        """Save the reply's text, status, token count and speed (measured here when the engine gave none)."""
        writer = self.writer
        tokens = stats.generated_tokens if stats else writer.pieces
        rate = round(stats.decode_tps, 1) if stats and stats.decode_tps else None
        if rate is None and tokens and stats is None:
            elapsed = time.monotonic() - self.started
            rate = round(tokens / elapsed, 1) if elapsed > 0 else None
        writer.finish(status, tokens=tokens, tokens_per_s=rate)
        self.finished = True
        self.message = StoredMessage(
            self.message.id, self.message.chat_id, self.message.position, "assistant", writer.text,
            self.message.created, status, tokens, rate, self.message.model,
        )
        self.conversation._replace(self.message)
        self.conversation.refresh()
        return self.message


class Conversation:
    """A chat (or a draft not yet stored) over a chat store.

    A draft becomes a stored chat with its first message; until then its system message and
    settings are held here. ``saving=False`` keeps everything in a private in-memory store.
    """

    def __init__(self, store: ChatStore, chat: Chat | None = None) -> None:
        self.store = store
        self.chat = chat
        self.messages: list[StoredMessage] = store.messages(chat.id) if chat is not None else []
        self.draft_system: str | None = None
        self.draft_settings = ChatSettings()
        self.system_override: str | None = None  # this session only (`hearth chat --chat ID --system ...`)
        self.remedy_override: str | None = None  # this session only (`--fold-system`, `--merge-turns`)
        self.edit_position: int | None = None

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, store: ChatStore, chat_id: int) -> Conversation:
        """A stored chat; replies left streaming by a process since gone are marked interrupted first."""
        store.recover_interrupted()
        return cls(store, store.chat(chat_id))

    @classmethod
    def detached(cls, store: ChatStore | None, chat_id: int | None) -> Conversation:
        """A conversation that saves nothing: a copy of chat ``chat_id`` (or a draft) in memory."""
        memory = ChatStore(Path(":memory:"))
        if store is None or chat_id is None:
            return cls(memory)
        chat = store.chat(chat_id)
        copy = memory.insert_chat(chat.title, [
            {"role": m.role, "content": m.content, "created": m.created, "status": m.status,
             "tokens": m.tokens, "tokens_per_s": m.tokens_per_s, "model": m.model}
            for m in store.messages(chat_id)
        ], model=chat.model, system_message=chat.system_message, settings=chat.settings, created=chat.created)
        return cls(memory, copy)

    def refresh(self) -> None:
        if self.chat is not None:
            self.chat = self.store.chat(self.chat.id)

    # -- settings --------------------------------------------------------------------------------

    @property
    def settings(self) -> ChatSettings:
        return ChatSettings.from_stored(self.chat.settings) if self.chat is not None else self.draft_settings

    def _save_settings(self, settings: ChatSettings, **fields: Any) -> None:
        if self.chat is None:
            self.draft_settings = settings
            return
        self.chat = self.store.update_chat(self.chat.id, settings=settings.to_stored(), **fields)

    def set_model(self, path: str, name: str | None = None) -> None:
        """The model this chat uses (its name is shown in the chat list)."""
        fields = {"model": name or Path(path).name} if self.chat is not None else {}
        self._save_settings(self.settings.with_changes(model_path=path), **fields)

    def set_sampling(self, values: Mapping[str, Any]) -> MergedSampling:
        """Keep the user's sampling values; a bad one is named in ``problems`` and not saved."""
        merged = self.settings.merged_sampling(None, values)
        kept = {k: v for k, v in sampling_values(merged.settings).items() if k in values}
        self._save_settings(self.settings.with_changes(sampling={**self.settings.sampling, **kept}))
        return merged

    def sampling(self, model_defaults: Mapping[str, Any] | None,
                 overrides: Mapping[str, Any] | None = None) -> MergedSampling:
        return self.settings.merged_sampling(model_defaults, overrides)

    def set_remedy(self, remedy: str | None) -> None:
        self._save_settings(self.settings.with_changes(template_remedy=remedy))

    @property
    def remedy(self) -> str | None:
        return self.remedy_override or self.settings.template_remedy

    @property
    def own_system(self) -> str | None:
        """The chat's own system message (``""``: none at all; None: the model's default)."""
        if self.system_override is not None:
            return self.system_override
        return self.chat.system_message if self.chat is not None else self.draft_system

    def set_system_message(self, value: str | None) -> None:
        if self.chat is None:
            self.draft_system = value
        else:
            self.chat = self.store.update_chat(self.chat.id, system_message=value)

    def system_message(self, default: str | None) -> str | None:
        return effective_system(self.own_system, default)

    # -- the prompt ------------------------------------------------------------------------------

    def history(self, excluding: int | None = None,
                messages: Sequence[StoredMessage] | None = None) -> list[StoredMessage]:
        """The messages the model sees again (``messages``: these instead of the chat's, same rule)."""
        return [m for m in (self.messages if messages is None else messages) if m.id != excluding and in_history(m)]

    def turns(self, default_system: str | None, *, excluding: int | None = None,
              pending_user: str | None = None, messages: Sequence[StoredMessage] | None = None) -> list[Message]:
        """The messages for the template: the system message, the history, and a message about to be sent."""
        turns = chat_turns(self.own_system, default_system,
                           [Message(m.role, m.content) for m in self.history(excluding, messages)])
        if pending_user is not None:
            turns.append(Message("user", pending_user))
        return turns

    def build_prompt(self, chat_format: ChatFormat, *, continuing: StoredMessage | None = None,
                     pending_user: str | None = None, messages: Sequence[StoredMessage] | None = None) -> str:
        """The exact prompt; raises TemplateError (or TemplateRefusal naming a remedy) when it cannot be built."""
        turns = self.turns(chat_format.system_message, excluding=continuing.id if continuing else None,
                           pending_user=pending_user, messages=messages)
        prompt = chat_format.render(turns, remedy=self.remedy)
        # The stored text is the start of the assistant's turn; the model carries on from it.
        return prompt + continuing.content if continuing is not None else prompt

    # -- changing the conversation ---------------------------------------------------------------

    def ensure_chat(self, model_name: str | None, model_path: str | None) -> Chat:
        """Store the draft (with its system message and settings) if it is not stored yet."""
        if self.chat is None:
            settings = self.draft_settings
            if model_path is not None:
                settings = settings.with_changes(model_path=model_path)
            self.chat = self.store.create_chat(model=model_name, system_message=self.draft_system,
                                               settings=settings.to_stored())
            self.draft_system, self.draft_settings = None, ChatSettings()
        return self.chat

    def begin_edit(self, message: StoredMessage) -> bool:
        """Sending next replaces this user message and everything after it."""
        if message.role != "user":
            return False
        self.edit_position = message.position
        return True

    def cancel_edit(self) -> None:
        self.edit_position = None

    def truncate(self, position: int) -> None:
        """Delete the messages from ``position`` on (an edit, a regenerate)."""
        if self.chat is not None:
            self.store.truncate(self.chat.id, position)
        self.messages = [m for m in self.messages if m.position < position]

    def add_user(self, text: str, *, model_name: str | None = None, model_path: str | None = None) -> StoredMessage:
        """Save the user's message (committed before this returns); an edit in progress replaces its turn."""
        chat = self.ensure_chat(model_name, model_path)
        if self.edit_position is not None:
            self.truncate(self.edit_position)
            self.cancel_edit()
        message = self.store.add_message(chat.id, "user", text)
        self.messages.append(message)
        return message

    def last_reply(self) -> StoredMessage | None:
        last = self.messages[-1] if self.messages else None
        return last if last is not None and last.role == "assistant" else None

    def drop_last_reply(self) -> bool:
        """Before a regenerate: remove the last reply (it is replaced by a new one)."""
        last = self.last_reply()
        if last is None:
            return False
        self.truncate(last.position)
        return True

    def continuable(self) -> StoredMessage | None:
        """The last reply, when it was stopped or interrupted and can be carried on."""
        last = self.last_reply()
        return last if last is not None and last.status in ("interrupted", "stopped") else None

    def start_reply(self, model_name: str | None, *, continuing: StoredMessage | None = None,
                    background: bool = False,
                    on_error: Callable[[ChatStoreError], None] | None = None) -> Reply:
        """A new streaming reply, or (``continuing``) more of a stopped or interrupted one."""
        assert self.chat is not None, "a reply follows a stored user message"
        if continuing is None:
            message = self.store.add_message(self.chat.id, "assistant", "", status="streaming", model=model_name)
            self.messages.append(message)
            writer = ReplyWriter(self.store, message.id, background=background, on_error=on_error)
        else:
            self.store.update_message(continuing.id, status="streaming")
            message = StoredMessage(continuing.id, continuing.chat_id, continuing.position, "assistant",
                                    continuing.content, continuing.created, "streaming", continuing.tokens,
                                    continuing.tokens_per_s, continuing.model)
            self._replace(message)
            writer = ReplyWriter(self.store, message.id, text=continuing.content, background=background,
                                 on_error=on_error)
        return Reply(self, message, writer)

    def _replace(self, message: StoredMessage) -> None:
        self.messages = [message if m.id == message.id else m for m in self.messages]
