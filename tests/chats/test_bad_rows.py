"""A chat database holding bad rows (1e300, Infinity, NaN, wrong types, bad UTF-8) still lists and exports."""

from __future__ import annotations

import json
import random
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from app.chats.store import ChatStore
from app.cli import main

BAD_VALUES: list[Any] = [
    1e300, -1e300, float("inf"), float("-inf"), -1e18, 1e18, "NaN", "Infinity", "abc", "",
    b"\xff\xfe\x00", 2**63 - 1, -(2**63), -1, 0, 3.5, "\x1b]0;pwn\x07\x1b[2J", "\u202egpj", "{not json",
    "[1, 2]", '{"a": NaN}', "9" * 50,
]
CHAT_COLUMNS = ["title", "created", "updated", "model", "system_message", "settings", "pinned",
                "archived"]
MESSAGE_COLUMNS = ["position", "role", "content", "created", "status", "tokens", "tokens_per_s",
                   "model"]


def _raw(db_path: Path) -> sqlite3.Connection:
    """A plain connection that writes what Hearth never would (checks off, bad UTF-8 as TEXT)."""
    db = sqlite3.connect(str(db_path), isolation_level=None)
    db.execute("PRAGMA ignore_check_constraints = ON")
    return db


def _bind(value: Any) -> tuple[str, Any]:
    # Bytes go in as TEXT that is not UTF-8, the worst a foreign writer can leave.
    return ("CAST(? AS TEXT)", value) if isinstance(value, bytes) else ("?", value)


def _set(db: sqlite3.Connection, table: str, row_id: int, column: str, value: Any) -> None:
    placeholder, bound = _bind(value)
    db.execute(f"UPDATE {table} SET {column} = {placeholder} WHERE id = ?", (bound, row_id))


def _list_and_export_everything(capsys: pytest.CaptureFixture[str]) -> int:
    """Run the commands a user would; return how many chats they showed."""
    assert main(["chats", "list"]) == 0
    table, err = capsys.readouterr()
    assert err == "" and "\x1b" not in table
    assert main(["chats", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr()[0])  # valid JSON: no NaN or Infinity in it
    for row in rows:
        for fmt in ("md", "json"):
            assert main(["chats", "export", str(row["id"]), "--format", fmt]) == 0
            out, err = capsys.readouterr()
            assert err == "" and "\x1b" not in out
            if fmt == "json":
                json.loads(out)
    assert main(["chats", "list", "--search", "hello"]) == 0
    capsys.readouterr()
    return len(rows)


def test_issue_rows_created_1e300_infinity_minus_1e18_nan_still_list_and_export(
    capsys: pytest.CaptureFixture[str], hearth_home: Path
) -> None:
    with ChatStore.open_default() as store:
        ids = [store.insert_chat(f"chat {n}", [{"role": "user", "content": "hello"},
                                               {"role": "assistant", "content": "hi"}]).id
               for n in range(6)]
        path = store.path
    db = _raw(path)
    for chat_id, value in zip(ids, [1e300, float("inf"), -1e18, "NaN", "yesterday", b"\xff"], strict=True):
        _set(db, "chats", chat_id, "created", value)
        _set(db, "chats", chat_id, "updated", value)
    message_id = db.execute("SELECT max(id) FROM messages").fetchone()[0]
    for column, value in [("role", "robot"), ("status", "weird"), ("tokens", "many"),
                          ("tokens_per_s", float("inf")), ("content", b"\xc3\x28 bad utf-8"),
                          ("created", 1e300)]:
        _set(db, "messages", message_id, column, value)
    db.close()
    assert _list_and_export_everything(capsys) == 6
    with ChatStore.open_default() as store:
        bad = store.messages(ids[-1])[-1]
        assert bad.content == "\ufffd( bad utf-8" and bad.created == 0.0 and bad.tokens is None
        assert {c.created for c in store.list_chats()} == {0.0}


def test_generated_bad_rows_never_break_listing_or_export(
    capsys: pytest.CaptureFixture[str], hearth_home: Path
) -> None:
    rng = random.Random(19)
    with ChatStore.open_default() as store:
        chats = [store.insert_chat(f"chat {n}", [{"role": "user", "content": f"hello {n}"},
                                                 {"role": "assistant", "content": "reply"}]).id
                 for n in range(40)]
        path = store.path
    db = _raw(path)
    tried = 0
    for chat_id in chats:
        for column in rng.sample(CHAT_COLUMNS, 3):
            value = rng.choice(BAD_VALUES)
            if column in ("title", "created", "updated", "settings", "pinned", "archived") and value is None:
                continue
            _set(db, "chats", chat_id, column, value)
            tried += 1
        message_id = db.execute("SELECT max(id) FROM messages WHERE chat_id = ?", (chat_id,)).fetchone()[0]
        for column in rng.sample(MESSAGE_COLUMNS, 3):
            try:
                _set(db, "messages", message_id, column, rng.choice(BAD_VALUES))
            except sqlite3.IntegrityError:
                continue  # UNIQUE (chat_id, position): the database itself refuses it
            tried += 1
    db.close()
    shown = _list_and_export_everything(capsys)
    assert shown == len(chats)
    print(f"\n[tally] bad stored values: {tried}/{tried} handled ({shown} chats listed and exported)",
          file=sys.stderr)
