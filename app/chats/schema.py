"""The chat database schema as a list of migrations, applied in order and counted in user_version."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

# A migration returns the SQL that moves the schema one version on ("" for nothing to do).
Migration = Callable[[sqlite3.Connection], str]


def _base_tables(db: sqlite3.Connection) -> str:
    # AUTOINCREMENT: an id is never handed out twice, so "chat 12" always means one chat.
    return (
        """
        CREATE TABLE chats (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL DEFAULT '',
            created REAL NOT NULL,
            updated REAL NOT NULL,
            model TEXT,
            system_message TEXT,
            settings TEXT NOT NULL DEFAULT '{}',
            pinned INTEGER NOT NULL DEFAULT 0,
            archived INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX chats_by_updated ON chats (updated DESC, id DESC);
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            chat_id INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL DEFAULT '',
            created REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'complete'
                CHECK (status IN ('complete', 'streaming', 'stopped', 'error')),
            tokens INTEGER,
            tokens_per_s REAL,
            model TEXT,
            UNIQUE (chat_id, position)
        );
        """
    )


def fts5_available(db: sqlite3.Connection) -> bool:
    try:
        db.execute("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x)")
        db.execute("DROP TABLE temp.fts5_probe")
        return True
    except sqlite3.OperationalError:
        return False


def _full_text_index(db: sqlite3.Connection) -> str:
    """Search indexes over titles and contents, kept in step by triggers (skipped without FTS5)."""
    if not fts5_available(db):
        return ""
    return (
        """
        CREATE VIRTUAL TABLE chats_fts USING fts5(
            title, content='chats', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
        CREATE VIRTUAL TABLE messages_fts USING fts5(
            content, content='messages', content_rowid='id',
            tokenize='unicode61 remove_diacritics 2');
        INSERT INTO chats_fts (rowid, title) SELECT id, title FROM chats;
        INSERT INTO messages_fts (rowid, content) SELECT id, content FROM messages;
        CREATE TRIGGER chats_fts_insert AFTER INSERT ON chats BEGIN
            INSERT INTO chats_fts (rowid, title) VALUES (new.id, new.title);
        END;
        CREATE TRIGGER chats_fts_delete AFTER DELETE ON chats BEGIN
            INSERT INTO chats_fts (chats_fts, rowid, title) VALUES ('delete', old.id, old.title);
        END;
        CREATE TRIGGER chats_fts_update AFTER UPDATE OF title ON chats BEGIN
            INSERT INTO chats_fts (chats_fts, rowid, title) VALUES ('delete', old.id, old.title);
            INSERT INTO chats_fts (rowid, title) VALUES (new.id, new.title);
        END;
        """
        + _MESSAGE_FTS_TRIGGERS
    )


_MESSAGE_FTS_TRIGGERS = """
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
    END;
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
            VALUES ('delete', old.id, old.content);
    END;
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
            VALUES ('delete', old.id, old.content);
        INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
    END;
"""


def _interrupted_replies(db: sqlite3.Connection) -> str:
    """Status ``interrupted`` and the ``writer`` of a streaming reply (SQLite rebuilds the table
    to change a CHECK); ids, positions and the search index stay as they were."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").fetchone()
    sequence = int(row[0]) if row else 0
    has_fts = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts'"
    ).fetchone() is not None
    columns = "id, chat_id, position, role, content, created, status, tokens, tokens_per_s, model"
    # A row another tool wrote past the old checks must not stop the upgrade (and so every chat).
    copied = columns.replace(
        "role,", "CASE WHEN role IN ('system', 'user', 'assistant') THEN role ELSE 'user' END,"
    ).replace(
        "status,", "CASE WHEN status IN ('complete', 'streaming', 'stopped', 'error') "
        "THEN status ELSE 'error' END,"
    )
    return (
        f"""
        CREATE TABLE messages_v3 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            chat_id INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL DEFAULT '',
            created REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'complete'
                CHECK (status IN ('complete', 'streaming', 'stopped', 'error', 'interrupted')),
            tokens INTEGER,
            tokens_per_s REAL,
            model TEXT,
            writer TEXT,
            UNIQUE (chat_id, position)
        );
        INSERT INTO messages_v3 ({columns}) SELECT {copied} FROM messages
            WHERE chat_id IN (SELECT id FROM chats);
        DROP TABLE messages;
        ALTER TABLE messages_v3 RENAME TO messages;
        UPDATE sqlite_sequence SET seq = max(seq, {sequence}) WHERE name = 'messages';
        CREATE INDEX messages_unfinished ON messages (chat_id)
            WHERE status IN ('streaming', 'interrupted');
        """
        + (_MESSAGE_FTS_TRIGGERS if has_fts else "")
    )


# Append only: a released migration never changes; user_version is the count applied.
MIGRATIONS: tuple[Migration, ...] = (_base_tables, _full_text_index, _interrupted_replies)
SCHEMA_VERSION = len(MIGRATIONS)


def statements(script: str) -> list[str]:
    """Split a script into single statements (trigger bodies stay whole)."""
    result: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            result.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        result.append(buffer.strip())
    return result
