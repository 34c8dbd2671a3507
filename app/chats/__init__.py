"""Chat history: conversations and messages in SQLite, shared by the GUI and the CLI."""

from __future__ import annotations

from app.chats.records import Chat, StoredMessage
from app.chats.reply import ReplyWriter
from app.chats.store import ChatNotFound, ChatStore, ChatStoreError, DeletedChat

__all__ = [
    "Chat",
    "ChatNotFound",
    "ChatStore",
    "ChatStoreError",
    "DeletedChat",
    "ReplyWriter",
    "StoredMessage",
]
