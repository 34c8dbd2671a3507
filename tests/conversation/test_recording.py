"""A conversation records itself as `hearth chat` drives it: the question at once, the reply as it grows."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.chats.store import ChatNotFound, ChatStore
from app.conversation.conversation import Conversation
from app.engine.protocol import GenerationStats
from app.paths import app_dirs
from app.templates.prompt import Message


def _said(conversation: Conversation) -> list[Message]:
    return [Message(m.role, m.content) for m in conversation.history()]


def test_a_new_chat_is_saved_and_continued(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    first = Conversation(ChatStore(db))
    first.set_system_message("Be kind.")
    assert _said(first) == []
    first.add_user("What is 2+2?", model_name="SmolLM2")
    reply = first.start_reply("SmolLM2", background=True)
    reply.append("4")
    stats = GenerationStats(prompt_tokens=9, reused_tokens=0, evaluated_tokens=9, generated_tokens=4,
                            prompt_eval_s=0.1, decode_s=0.1, ttft_s=0.1, stop_reason="eos")
    reply.finish("complete", stats)
    assert first.chat is not None
    chat_id = first.chat.id
    first.store.close()

    again = Conversation.open(ChatStore(db), chat_id)
    assert again.own_system == "Be kind."
    assert _said(again) == [Message("user", "What is 2+2?"), Message("assistant", "4")]
    assert again.turns(None) == [Message("system", "Be kind."), *_said(again)]
    again.add_user("And 3+3?", model_name="SmolLM2")
    again.start_reply("SmolLM2", background=True).finish("error")
    again.store.close()
    with ChatStore(db) as store:
        messages = store.messages(chat_id)
        assert [(m.role, m.content, m.status) for m in messages] == [
            ("user", "What is 2+2?", "complete"), ("assistant", "4", "complete"),
            ("user", "And 3+3?", "complete"), ("assistant", "", "error"),
        ]
        assert (messages[1].tokens, messages[1].tokens_per_s) == (4, 30.0)
        assert store.chat(chat_id).model == "SmolLM2"


def test_no_save_records_nothing_but_still_reads_a_continued_chat(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    with ChatStore(db) as store:
        chat = store.create_chat("kept")
        store.add_message(chat.id, "user", "old")
    quiet = Conversation.detached(None, None)
    quiet.add_user("not saved")
    sink = quiet.start_reply(None, background=True)
    sink.append("x")
    sink.finish("complete")
    assert not app_dirs().chats_db.exists(), "--no-save without --chat opens no store"
    with ChatStore(db) as stored:
        reading = Conversation.detached(stored, chat.id)
    assert _said(reading) == [Message("user", "old")]
    reading.add_user("new")
    reading.start_reply(None).finish("complete")
    with ChatStore(db) as store:
        assert [m.content for m in store.messages(chat.id)] == ["old"]
        assert store.chat_count() == 1


def test_unknown_chat_id_is_a_clear_error(tmp_path: Path) -> None:
    with ChatStore(tmp_path / "c.sqlite3") as store:
        with pytest.raises(ChatNotFound, match="hearth chats list"):
            Conversation.open(store, 42)
        with pytest.raises(ChatNotFound, match="hearth chats list"):
            Conversation.detached(store, 42)
