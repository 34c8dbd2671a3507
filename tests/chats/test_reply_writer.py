"""ReplyWriter batches writes of a growing reply (a conversation's recording: tests/conversation/test_recording.py)."""

from __future__ import annotations

import time
from pathlib import Path

from app.chats.reply import ReplyWriter
from app.chats.store import ChatStore


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
