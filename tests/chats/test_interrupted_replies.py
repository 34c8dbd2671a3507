"""Replies left ``streaming`` by a dead writer (kill -9, a full disk) become ``interrupted`` on the next start."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.chats.schema import MIGRATIONS, SCHEMA_VERSION, statements
from app.chats.store import ChatStore, writer_alive, writer_identity
from app.cli import main

ROOT = Path(__file__).resolve().parents[2]

# Records as `hearth chat` does (its Conversation), then keeps streaming until killed.
STREAMING_CHILD = r"""
import sys, time
from pathlib import Path
from app.chats.store import ChatStore
from app.conversation.conversation import Conversation

conversation = Conversation(ChatStore(Path(sys.argv[1])))
conversation.add_user("Tell me a long story", model_name="test")
reply = conversation.start_reply("test", background=True)
print("streaming", conversation.chat.id, flush=True)
n = 0
while True:
    reply.append(f"word{n} ")
    n += 1
    time.sleep(0.02)
"""

# The disk fills up mid-reply: SQLite's page limit makes every later write fail with SQLITE_FULL.
FULL_DISK_CHILD = r"""
import sys
from pathlib import Path
from app.chats.store import ChatStore, ChatStoreError
from app.conversation.conversation import Conversation

store = ChatStore(Path(sys.argv[1]))
conversation = Conversation(store)
conversation.add_user("Fill the disk", model_name="test")
reply = conversation.start_reply("test", background=True)
reply.append("first part, saved. ")
reply.writer.flush()
pages = store._db.execute("PRAGMA page_count").fetchone()[0]
store._db.execute(f"PRAGMA max_page_count = {pages}")
try:
    for n in range(200):
        reply.append("x" * 5000)
        reply.writer.flush()
except ChatStoreError as exc:
    print("full:", exc, flush=True)
try:
    reply.finish("complete")
except ChatStoreError:
    print("finish failed too", flush=True)
print("chat", conversation.chat.id, flush=True)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_kill_9_mid_reply_is_interrupted_on_next_start_with_its_text(
    capsys: pytest.CaptureFixture[str], hearth_home: Path
) -> None:
    db = ChatStore.open_default().path
    child = subprocess.Popen([sys.executable, "-c", STREAMING_CHILD, str(db)], stdout=subprocess.PIPE,
                             text=True, env=_env())
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        assert line[:1] == ["streaming"], line
        chat_id = int(line[1])
        time.sleep(1.2)
        # While the writer lives, another process must not take its reply for a dead one.
        with ChatStore(db) as store:
            assert store.messages(chat_id)[1].status == "streaming"
            assert store.reply_states() == {chat_id: "streaming"}
        assert main(["chats", "list"]) == 0 and "replying" in capsys.readouterr()[0]
        child.send_signal(signal.SIGKILL)
        time.sleep(0.3)
        # Killed but not yet reaped (a zombie): already no writer.
        with ChatStore(db) as store:
            assert store.reply_states() == {chat_id: "interrupted"}
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert main(["chats", "list"]) == 0  # the next start
    out = capsys.readouterr()[0]
    assert "interrupted reply" in out and "continue or regenerate" in out
    assert main(["chats", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr()[0])[0]["state"] == "interrupted"
    with ChatStore(db) as store:
        user, reply = store.messages(chat_id)
        assert user.content == "Tell me a long story"
        assert reply.status == "interrupted" and reply.content.startswith("word0 word1 ")
        assert len(reply.content.split()) >= 20, "the text saved before the kill stays"
        assert store.recover_interrupted() == [], "done once"


def test_full_disk_mid_reply_keeps_the_saved_part_and_is_interrupted(hearth_home: Path) -> None:
    db = ChatStore.open_default().path
    result = subprocess.run([sys.executable, "-c", FULL_DISK_CHILD, str(db)], capture_output=True,
                            text=True, env=_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "database or disk is full" in result.stdout and "finish failed too" in result.stdout
    chat_id = int(result.stdout.split("chat ")[-1])
    with ChatStore(db) as store:
        reply = store.messages(chat_id)[1]
        assert reply.status == "interrupted"
        assert reply.content.startswith("first part, saved. ")


def test_a_live_writer_in_this_process_is_left_alone(hearth_home: Path) -> None:
    with ChatStore.open_default() as store:
        chat = store.create_chat("live")
        store.add_message(chat.id, "user", "hi")
        reply = store.add_message(chat.id, "assistant", "par", status="streaming")
        assert writer_alive(writer_identity())
        with ChatStore(store.path) as other:
            assert other.recovered == [] and other.message(reply.id).status == "streaming"
        store.update_message(reply.id, content="partial", status="complete")
        assert store.reply_states() == {}
    assert not writer_alive("999999999@1.00") and not writer_alive(None) and not writer_alive("junk")


def test_version_2_database_migrates_keeping_ids_search_and_streaming_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for version, migration in enumerate(MIGRATIONS[:2], start=1):
        for statement in statements(migration(db)):
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {version}")
    db.execute("INSERT INTO chats (title, created, updated) VALUES ('Old chat', 1, 1)")
    db.execute("INSERT INTO messages (chat_id, position, role, content, created) "
               "VALUES (1, 0, 'user', 'zebra crossing', 1)")
    db.execute("INSERT INTO messages (chat_id, position, role, content, created, status) "
               "VALUES (1, 1, 'assistant', 'half a rep', 2, 'streaming')")
    db.execute("INSERT INTO messages (chat_id, position, role, content, created) "
               "VALUES (1, 2, 'user', 'deleted later', 3)")
    db.execute("DELETE FROM messages WHERE id = 3")
    # Rows written past the old checks by another tool must not stop the upgrade.
    db.execute("PRAGMA ignore_check_constraints = ON")
    db.execute("INSERT INTO messages (chat_id, position, role, content, created, status) "
               "VALUES (1, 5, 'robot', 'beep', 4, 'weird')")
    db.execute("INSERT INTO messages (chat_id, position, role, content, created) "
               "VALUES (77, 0, 'user', 'orphan of a chat long gone', 5)")
    db.close()
    with ChatStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 3
        assert [(m.id, m.role, m.status) for m in store.messages(1)] == [
            (1, "user", "complete"), (2, "assistant", "interrupted"), (4, "user", "error")]
        assert [c.id for c in store.search("zebra")] == [1], "the search index survived the rebuild"
        added = store.add_message(1, "user", "new one")
        assert added.id == 6, "an id is never handed out twice"
        assert [c.id for c in store.search("new")] == [1]


def test_reply_writer_reports_a_full_disk_once_an_interval_and_keeps_the_text(hearth_home: Path) -> None:
    from app.chats.reply import ReplyWriter
    from app.chats.store import ChatStoreError

    with ChatStore.open_default() as store:
        chat = store.create_chat("full")
        message = store.add_message(chat.id, "assistant", "", status="streaming")
        errors: list[ChatStoreError] = []
        writer = ReplyWriter(store, message.id, interval=0.05, on_error=errors.append)
        writer.append("saved part. ")
        writer.flush()
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")
        started = time.monotonic()
        while time.monotonic() - started < 0.3:
            writer.append("y" * 4000)  # every piece; a write is tried at most once an interval
        assert 1 <= len(errors) <= 10, len(errors)
        assert "database or disk is full" in str(errors[0])
        writer.finish("complete")
        assert len(writer.text) > 100_000, "the text is all still in memory"
        assert store.message(message.id).content == "saved part. "
        # Its writer (this process) still runs, so it is not taken for dead; once this process
        # is gone the next start marks it interrupted (the subprocess test above shows that).
        assert store.message(message.id).status == "streaming"
        assert store.reply_states() == {chat.id: "streaming"}
