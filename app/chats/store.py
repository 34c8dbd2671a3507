"""The chat store: every conversation in one SQLite file (WAL), versioned with migrations."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from app.chats.records import INTERRUPTED, ROLES, STATUSES, Chat, StoredMessage
from app.chats.rows import chat_from_row, message_from_row, text_value
from app.chats.schema import MIGRATIONS, SCHEMA_VERSION, statements
from app.errors import HearthError
from app.paths import app_dirs

TITLE_LENGTH = 60

_CHAT_COLUMNS = "id, title, created, updated, model, system_message, settings, pinned, archived"
_MESSAGE_COLUMNS = (
    "id, chat_id, position, role, content, created, status, tokens, tokens_per_s, model"
)


class ChatStoreError(HearthError):
    """The chat database could not be opened or written."""


class ChatNotFound(ChatStoreError):
    """No chat with the id asked for."""


def title_from(text: str) -> str:
    """A chat title from the first user message: its first line, shortened at a word."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    line = line.lstrip("#>*- ").strip()
    if len(line) <= TITLE_LENGTH:
        return line
    cut = line[:TITLE_LENGTH].rsplit(" ", 1)[0] or line[:TITLE_LENGTH]
    return cut.rstrip(",.;:") + "…"


# Rows become records through app.chats.rows: whatever a row holds, reading it never fails.
_chat = chat_from_row
_message = message_from_row


def _lenient_text(data: bytes) -> str:
    """TEXT that is not valid UTF-8 (written by another tool) is read with replacements."""
    return data.decode("utf-8", "replace")


def writer_identity(pid: int | None = None) -> str:
    """This process as the writer of a streaming reply: its pid and start time (pids are reused)."""
    pid = os.getpid() if pid is None else pid
    try:
        started = psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        started = 0.0
    return f"{pid}@{started:.2f}"


def writer_alive(identity: str | None) -> bool:
    """Whether the process that wrote ``identity`` still runs (the same pid and start time)."""
    if not identity or "@" not in identity:
        return False
    pid_text, _, started_text = identity.partition("@")
    try:
        pid, started = int(pid_text), float(started_text)
        process = psutil.Process(pid)
        # A killed process that nobody has reaped yet (a zombie) writes nothing any more.
        return abs(process.create_time() - started) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
    except (ValueError, psutil.Error, OSError):
        return False


@dataclass(frozen=True)
class DeletedChat:
    """A deleted chat as it was, rows and all, so that an undo puts it back with the same ids."""

    chat_row: tuple[Any, ...]
    message_rows: tuple[tuple[Any, ...], ...]

    @property
    def chat(self) -> Chat:
        return _chat(self.chat_row)


def _fts_query(text: str) -> str | None:
    """Each word of the query as a quoted prefix term, all required; None when no words."""
    words = re.findall(r"\w+", text)
    return " ".join(f'"{w}"*' for w in words) if words else None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class ChatStore:
    """Conversations and their messages. Safe to share between threads; one writer at a time.

    Several processes (the GUI and ``hearth chat``) may open the same file: WAL lets
    readers go on while one writes, and writes wait up to five seconds for each other.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(path), timeout=5.0, isolation_level=None, check_same_thread=False
            )
            self._db.text_factory = _lenient_text
            self._db.execute("PRAGMA busy_timeout = 5000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
            self.has_fts = self._table_exists("messages_fts")
            self.recovered = self._recover_interrupted()
        except sqlite3.DatabaseError as exc:
            raise ChatStoreError(
                f"cannot open the chat history at {path}: {exc}. If the file is damaged, "
                "move it aside and Hearth will start a new one."
            ) from exc
        except OSError as exc:
            raise ChatStoreError(f"cannot create the chat history at {path}: {exc}") from exc

    @classmethod
    def open_default(cls) -> ChatStore:
        """The store in the user's data folder (or under HEARTH_HOME)."""
        return cls(app_dirs().chats_db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ChatStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -----------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _table_exists(self, name: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None

    def _migrate(self) -> None:
        if self.schema_version > SCHEMA_VERSION:
            raise ChatStoreError(
                f"the chat history at {self.path} was written by a newer Hearth "
                f"(schema {self.schema_version}, this one knows {SCHEMA_VERSION}); update Hearth"
            )
        for version, migration in enumerate(MIGRATIONS, start=1):
            if self.schema_version >= version:
                continue
            with self._transaction():
                # Another process may have migrated while this one waited for the lock.
                if self.schema_version >= version:
                    continue
                for statement in statements(migration(self._db)):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {version}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                # SQLite has already rolled back after some errors (a full disk): say the real one.
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._transaction() as db:
                yield db
        except sqlite3.DatabaseError as exc:  # a full disk, a locked file, a refused value
            raise ChatStoreError(f"could not save to the chat history at {self.path}: {exc}") from exc

    # -- chats ------------------------------------------------------------------------------

    def create_chat(
        self,
        title: str = "",
        *,
        model: str | None = None,
        system_message: str | None = None,
        settings: dict[str, Any] | None = None,
        created: float | None = None,
    ) -> Chat:
        return self.insert_chat(title, [], model=model, system_message=system_message, settings=settings,
                                created=created)

    def chat(self, chat_id: int) -> Chat:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_CHAT_COLUMNS} FROM chats WHERE id = ?", (chat_id,)
            ).fetchone()
        if row is None:
            raise ChatNotFound(f"no chat with id {chat_id}; `hearth chats list` shows the ids")
        return _chat(row)

    def list_chats(self, limit: int | None = None) -> list[Chat]:
        """Every chat, the most recently active first."""
        sql = f"SELECT {_CHAT_COLUMNS} FROM chats ORDER BY updated DESC, id DESC"
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        with self._lock:
            return [_chat(row) for row in self._db.execute(sql, params)]

    def search(self, query: str) -> list[Chat]:
        """Chats whose title or any message matches every word of ``query``, newest first."""
        query = query.strip()
        if not query:
            return self.list_chats()
        match = _fts_query(query) if self.has_fts else None
        if match is not None:
            sql = (
                f"SELECT {_CHAT_COLUMNS} FROM chats WHERE id IN "
                "(SELECT rowid FROM chats_fts WHERE chats_fts MATCH ?) OR id IN "
                "(SELECT m.chat_id FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
                " WHERE messages_fts MATCH ?) ORDER BY updated DESC, id DESC"
            )
            params: tuple[Any, ...] = (match, match)
        else:
            pattern = _like(query)
            sql = (
                f"SELECT {_CHAT_COLUMNS} FROM chats WHERE title LIKE ? ESCAPE '\\' OR EXISTS "
                "(SELECT 1 FROM messages WHERE chat_id = chats.id AND content LIKE ? ESCAPE '\\') "
                "ORDER BY updated DESC, id DESC"
            )
            params = (pattern, pattern)
        with self._lock:
            return [_chat(row) for row in self._db.execute(sql, params)]

    def rename_chat(self, chat_id: int, title: str) -> Chat:
        return self.update_chat(chat_id, title=title.strip())

    def update_chat(self, chat_id: int, **fields: Any) -> Chat:
        """Change title, model, system_message, settings, pinned or archived."""
        allowed = {"title", "model", "system_message", "settings", "pinned", "archived"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown chat fields: {', '.join(sorted(unknown))}")
        if not fields:
            return self.chat(chat_id)
        if "settings" in fields:
            fields["settings"] = json.dumps(fields["settings"] or {})
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._writing() as db:
            cursor = db.execute(
                f"UPDATE chats SET {assignments} WHERE id = ?", (*fields.values(), chat_id)
            )
        if cursor.rowcount == 0:
            raise ChatNotFound(f"no chat with id {chat_id}; `hearth chats list` shows the ids")
        return self.chat(chat_id)

    def delete_chat(self, chat_id: int) -> DeletedChat:
        """Delete a chat and its messages; what is returned lets ``restore_chat`` undo it."""
        with self._writing() as db:
            chat_row = db.execute(
                f"SELECT {_CHAT_COLUMNS} FROM chats WHERE id = ?", (chat_id,)
            ).fetchone()
            if chat_row is None:
                raise ChatNotFound(f"no chat with id {chat_id}; `hearth chats list` shows the ids")
            message_rows = db.execute(
                f"SELECT {_MESSAGE_COLUMNS}, writer FROM messages WHERE chat_id = ? ORDER BY position",
                (chat_id,),
            ).fetchall()
            db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))
        return DeletedChat(tuple(chat_row), tuple(tuple(row) for row in message_rows))

    def restore_chat(self, deleted: DeletedChat) -> Chat:
        """Put a deleted chat back as it was: the same id, messages, positions and states."""
        chat_id = deleted.chat_row[0]
        columns = _CHAT_COLUMNS.count(",") + 1
        message_columns = _MESSAGE_COLUMNS.count(",") + 2
        with self._writing() as db:
            if db.execute("SELECT 1 FROM chats WHERE id = ?", (chat_id,)).fetchone():
                raise ChatStoreError(f"chat {chat_id} is already there")
            db.execute(
                f"INSERT INTO chats ({_CHAT_COLUMNS}) VALUES ({', '.join('?' * columns)})",
                deleted.chat_row,
            )
            db.executemany(
                f"INSERT INTO messages ({_MESSAGE_COLUMNS}, writer) "
                f"VALUES ({', '.join('?' * message_columns)})",
                deleted.message_rows,
            )
        return self.chat(chat_id)

    def reply_states(self) -> dict[int, str]:
        """Chats with an unfinished reply: ``"interrupted"`` (its writer is gone) or ``"streaming"``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT chat_id, status, writer FROM messages "
                "WHERE status IN ('streaming', 'interrupted')"
            ).fetchall()
        states: dict[int, str] = {}
        for chat_id, status, writer in rows:
            live = status == "streaming" and writer_alive(writer)
            if states.get(chat_id) != INTERRUPTED:
                states[chat_id] = "streaming" if live else INTERRUPTED
        return states

    def recover_interrupted(self) -> list[int]:
        """Replies left ``streaming`` by a process that is gone (kill -9, a crash, a full disk)
        become ``interrupted``; their stored text stays. Returns the message ids changed."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, writer FROM messages WHERE status IN ('streaming', 'interrupted') "
                "AND status = 'streaming'"
            ).fetchall()
        stale = [(message_id, writer) for message_id, writer in rows if not writer_alive(writer)]
        if stale:
            with self._writing() as db:
                db.executemany(
                    "UPDATE messages SET status = 'interrupted', writer = NULL "
                    "WHERE id = ? AND status = 'streaming' AND writer IS ?",
                    stale,
                )
        return [message_id for message_id, _ in stale]

    def _recover_interrupted(self) -> list[int]:
        try:
            return self.recover_interrupted()
        except ChatStoreError:
            return []  # a read-only or full disk: the rows still read as interrupted

    def chat_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM chats").fetchone()[0])

    # -- messages ---------------------------------------------------------------------------

    def messages(self, chat_id: int) -> list[StoredMessage]:
        """The chat's messages in order."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE chat_id = ? ORDER BY position",
                (chat_id,),
            ).fetchall()
        return [_message(row) for row in rows]

    def message(self, message_id: int) -> StoredMessage:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
        if row is None:
            raise ChatStoreError(f"no message with id {message_id}")
        return _message(row)

    def add_message(
        self,
        chat_id: int,
        role: str,
        content: str,
        *,
        status: str = "complete",
        model: str | None = None,
        tokens: int | None = None,
        tokens_per_s: float | None = None,
        created: float | None = None,
    ) -> StoredMessage:
        """Append a message (committed before this returns) and mark the chat active."""
        if role not in ROLES:
            raise ChatStoreError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        if status not in STATUSES:
            raise ChatStoreError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        now = time.time() if created is None else created
        content = text_value(content)
        writer = writer_identity() if status == "streaming" else None
        with self._writing() as db:
            chat = db.execute("SELECT title FROM chats WHERE id = ?", (chat_id,)).fetchone()
            if chat is None:
                raise ChatNotFound(f"no chat with id {chat_id}; `hearth chats list` shows the ids")
            position = db.execute(
                "SELECT coalesce(max(position), -1) + 1 FROM messages WHERE chat_id = ?", (chat_id,)
            ).fetchone()[0]
            cursor = db.execute(
                "INSERT INTO messages (chat_id, position, role, content, created, status, tokens, "
                "tokens_per_s, model, writer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (chat_id, position, role, content, now, status, tokens, tokens_per_s, model, writer),
            )
            if role == "user" and not chat[0] and title_from(content):
                db.execute("UPDATE chats SET title = ? WHERE id = ?", (title_from(content), chat_id))
            db.execute(
                "UPDATE chats SET updated = max(updated, ?) WHERE id = ?", (now, chat_id)
            )
            message_id = cursor.lastrowid
        assert message_id is not None
        return self.message(message_id)

    def update_message(
        self,
        message_id: int,
        *,
        content: str | None = None,
        status: str | None = None,
        tokens: int | None = None,
        tokens_per_s: float | None = None,
    ) -> None:
        """Change a message in one transaction (a streaming reply calls this as it grows)."""
        fields: dict[str, Any] = {}
        if content is not None:
            fields["content"] = text_value(content)
        if status is not None:
            if status not in STATUSES:
                raise ChatStoreError(f"unknown status {status!r}")
            fields["status"] = status
            fields["writer"] = writer_identity() if status == "streaming" else None
        if tokens is not None:
            fields["tokens"] = tokens
        if tokens_per_s is not None:
            fields["tokens_per_s"] = tokens_per_s
        if not fields:
            return
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._writing() as db:
            db.execute(
                f"UPDATE messages SET {assignments} WHERE id = ?", (*fields.values(), message_id)
            )
            db.execute(
                "UPDATE chats SET updated = max(updated, ?) WHERE id = "
                "(SELECT chat_id FROM messages WHERE id = ?)",
                (time.time(), message_id),
            )

    def truncate(self, chat_id: int, position: int) -> None:
        """Delete the messages at ``position`` and after (before a regenerate or an edit)."""
        with self._writing() as db:
            db.execute(
                "DELETE FROM messages WHERE chat_id = ? AND position >= ?", (chat_id, position)
            )

    def message_count(self, chat_id: int | None = None) -> int:
        with self._lock:
            if chat_id is None:
                row = self._db.execute("SELECT count(*) FROM messages").fetchone()
            else:
                row = self._db.execute(
                    "SELECT count(*) FROM messages WHERE chat_id = ?", (chat_id,)
                ).fetchone()
        return int(row[0])

    def insert_chat(
        self,
        title: str,
        messages: Sequence[dict[str, Any]],
        *,
        model: str | None = None,
        system_message: str | None = None,
        settings: dict[str, Any] | None = None,
        created: float | None = None,
    ) -> Chat:
        """Add a whole chat with its messages in one transaction (import, benchmarks)."""
        now = time.time() if created is None else created
        with self._writing() as db:
            cursor = db.execute(
                "INSERT INTO chats (title, created, updated, model, system_message, settings) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (title, now, now, model, system_message, json.dumps(settings or {})),
            )
            chat_id = cursor.lastrowid
            updated = now
            rows = []
            for position, message in enumerate(messages):
                when = float(message.get("created") or now)
                updated = max(updated, when)
                rows.append((
                    chat_id, position, message["role"], message.get("content", ""), when,
                    message.get("status", "complete"), message.get("tokens"),
                    message.get("tokens_per_s"), message.get("model"),
                ))
            db.executemany(
                "INSERT INTO messages (chat_id, position, role, content, created, status, tokens, "
                "tokens_per_s, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.execute("UPDATE chats SET updated = ? WHERE id = ?", (updated, chat_id))
        assert chat_id is not None
        return self.chat(chat_id)
