"""ReplyWriter batches writes of a growing reply; ChatRecorder records a CLI conversation."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.chats.recorder import ChatRecorder
from app.chats.reply import ReplyWriter
from app.chats.store import ChatNotFound, ChatStore
from app.paths import app_dirs
from app.templates.prompt import Message


class CountingStore(ChatStore):
    writes = 0

    def update_message(self, message_id: int, **fields: object) -> None:  # type: ignore[override]
        self.writes += 1
        super().update_message(message_id, **fields)  # type: ignore[arg-type]


def test_writes_are_batched_to_the_interval(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "c.sqlite3")
    chat = store.create_chat("t")
    message = store.add_message(chat.id, "assistant", "", status="streaming")
    writer = ReplyWriter(store, message.id, interval=0.2)
    start = time.monotonic()
    while time.monotonic() - start < 1.0:
        writer.append("tok ")
        time.sleep(0.002)
    assert writer.pieces > 200
    assert 3 <= store.writes <= 6, f"{store.writes} writes for {writer.pieces} tokens"
    assert store.message(message.id).content.count("tok") >= writer.pieces - 120
    writer.finish("stopped", tokens_per_s=12.5)
    saved = store.message(message.id)
    assert saved.content == writer.text
    assert (saved.status, saved.tokens, saved.tokens_per_s) == ("stopped", writer.pieces, 12.5)
    writer.append("late")
    writer.flush()
    assert store.message(message.id).content == saved.content
    store.close()


def test_background_flush_saves_text_when_tokens_stop(tmp_path: Path) -> None:
    with ChatStore(tmp_path / "c.sqlite3") as store:
        chat = store.create_chat("t")
        message = store.add_message(chat.id, "assistant", "", status="streaming")
        writer = ReplyWriter(store, message.id, interval=0.2, background=True)
        writer.append("first ")
        time.sleep(0.05)
        writer.append("second")
        time.sleep(0.5)
        assert store.message(message.id).content == "first second"
        writer.finish()
        assert store.message(message.id).status == "complete"


def test_recorder_saves_a_new_chat_and_continues_it(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    recorder = ChatRecorder.start(model="SmolLM2", store=ChatStore(db), system_message="Be kind.")
    assert recorder.history() == []
    recorder.user("What is 2+2?")
    reply = recorder.reply()
    reply.append("4")
    reply.finish("complete", tokens=1, tokens_per_s=30.0)
    chat_id = recorder.chat_id
    assert chat_id is not None
    recorder.close()

    again = ChatRecorder.start(model="SmolLM2", chat_id=chat_id, store=ChatStore(db))
    assert again.system_message() == "Be kind."
    assert again.history() == [Message("user", "What is 2+2?"), Message("assistant", "4")]
    again.user("And 3+3?")
    again.reply().finish("error")
    again.close()
    with ChatStore(db) as store:
        messages = store.messages(chat_id)
        assert [(m.role, m.content, m.status) for m in messages] == [
            ("user", "What is 2+2?", "complete"), ("assistant", "4", "complete"),
            ("user", "And 3+3?", "complete"), ("assistant", "", "error"),
        ]
        assert store.chat(chat_id).model == "SmolLM2"


def test_no_save_records_nothing_but_still_reads_a_continued_chat(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    with ChatStore(db) as store:
        chat = store.create_chat("kept")
        store.add_message(chat.id, "user", "old")
    quiet = ChatRecorder.start(save=False)
    quiet.user("not saved")
    sink = quiet.reply()
    sink.append("x")
    sink.finish()
    assert not app_dirs().chats_db.exists(), "--no-save without --chat opens no store"
    reading = ChatRecorder.start(chat_id=chat.id, save=False, store=ChatStore(db))
    assert reading.history() == [Message("user", "old")]
    reading.user("new")
    reading.reply().finish()
    reading.close()
    with ChatStore(db) as store:
        assert [m.content for m in store.messages(chat.id)] == ["old"]
        assert store.chat_count() == 1


def test_unknown_chat_id_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ChatNotFound, match="hearth chats list"):
        ChatRecorder.start(chat_id=42, store=ChatStore(tmp_path / "c.sqlite3"))
