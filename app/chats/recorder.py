"""The seam for ``hearth chat``: record a command-line conversation into the shared chat store."""

from __future__ import annotations

from typing import Protocol

from app.chats.records import in_history
from app.chats.reply import ReplyWriter
from app.chats.store import ChatStore
from app.templates.prompt import Message


class ReplySink(Protocol):
    """Where a streaming reply goes: ``append`` each piece, then ``finish`` once."""

    def append(self, piece: str) -> None: ...

    def finish(
        self, status: str = "complete", *, tokens: int | None = None,
        tokens_per_s: float | None = None,
    ) -> None: ...


class _DiscardedReply:
    """A reply that is not saved (``--no-save``)."""

    def __init__(self) -> None:
        self.text = ""

    def append(self, piece: str) -> None:
        self.text += piece

    def finish(
        self, status: str = "complete", *, tokens: int | None = None,
        tokens_per_s: float | None = None,
    ) -> None:
        return None


class ChatRecorder:
    """Records one CLI conversation: each user message before generation, each reply as it grows.

    Usage::

        recorder = ChatRecorder.start(model="SmolLM2 135M", chat_id=args.chat, save=not args.no_save)
        history = recorder.history()          # earlier turns of --chat ID, as template Messages
        recorder.user("Hello")                # saved at once
        reply = recorder.reply()
        for piece in stream: reply.append(piece)
        reply.finish("complete", tokens=n, tokens_per_s=rate)   # or "stopped" / "error"
        recorder.close()
    """

    def __init__(
        self,
        store: ChatStore | None,
        chat_id: int | None,
        model: str | None,
        *,
        save: bool = True,
        system_message: str | None = None,
    ) -> None:
        self.store = store
        self.chat_id = chat_id
        self.model = model
        self._save = save
        self._system_message = system_message

    @classmethod
    def start(
        cls,
        *,
        model: str | None = None,
        chat_id: int | None = None,
        save: bool = True,
        system_message: str | None = None,
        store: ChatStore | None = None,
    ) -> ChatRecorder:
        """Continue chat ``chat_id`` or begin a new one (created on the first message).

        Raises ChatNotFound (a HearthError) for an unknown ``chat_id``, even with ``save=False``,
        since its history is still read.
        """
        if not save and chat_id is None:
            return cls(None, None, model, save=False)
        store = store or ChatStore.open_default()
        if chat_id is not None:
            store.chat(chat_id)
        return cls(store, chat_id, model, save=save, system_message=system_message)

    @property
    def saving(self) -> bool:
        return self.store is not None and self._save

    def system_message(self) -> str | None:
        """The stored chat's system message, if continuing a chat that has one."""
        if self.store is None or self.chat_id is None:
            return None
        return self.store.chat(self.chat_id).system_message

    def history(self) -> list[Message]:
        """Earlier turns of the continued chat, oldest first, by the one history rule (:func:`in_history`)."""
        if self.store is None or self.chat_id is None:
            return []
        return [Message(m.role, m.content) for m in self.store.messages(self.chat_id) if in_history(m)]

    def user(self, text: str) -> None:
        """Save the user's message (committed before this returns)."""
        if not self.saving:
            return
        assert self.store is not None
        if self.chat_id is None:
            self.chat_id = self.store.create_chat(
                model=self.model, system_message=self._system_message
            ).id
        self.store.add_message(self.chat_id, "user", text)

    def reply(self) -> ReplySink:
        """A sink for the assistant's streaming reply, saved every half second."""
        if not self.saving or self.chat_id is None:
            return _DiscardedReply()
        assert self.store is not None
        message = self.store.add_message(
            self.chat_id, "assistant", "", status="streaming", model=self.model
        )
        return ReplyWriter(self.store, message.id, background=True)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
