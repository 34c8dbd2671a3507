"""The chat store: schema and migrations, reopening, ordering, search, edits and deletes."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from app.chats.records import UNTITLED
from app.chats.schema import MIGRATIONS, SCHEMA_VERSION
from app.chats.store import ChatNotFound, ChatStore, ChatStoreError, title_from
from app.paths import app_dirs


def test_new_store_is_at_the_latest_schema_in_wal_mode(tmp_path: Path) -> None:
    with ChatStore(tmp_path / "chats.sqlite3") as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
        mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        assert store.has_fts


def test_default_store_lives_in_the_data_folder() -> None:
    with ChatStore.open_default() as store:
        store.create_chat("x")
    assert app_dirs().chats_db.is_file()


def test_a_version_1_database_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    from app.chats.schema import statements

    for statement in statements(MIGRATIONS[0](db)):
        db.execute(statement)
    db.execute("INSERT INTO chats (title, created, updated) VALUES ('old chat', 1, 1)")
    db.execute(
        "INSERT INTO messages (chat_id, position, role, content, created) "
        "VALUES (1, 0, 'user', 'remember the aardvark', 1)"
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with ChatStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert [c.title for c in store.search("aardvark")] == ["old chat"]
        assert store.messages(1)[0].content == "remember the aardvark"


def test_a_newer_schema_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(ChatStoreError, match="newer Hearth"):
        ChatStore(path)


def test_a_damaged_file_gives_an_error_saying_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ChatStoreError, match="move it aside"):
        ChatStore(path)


def test_everything_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    with ChatStore(path) as store:
        chat = store.create_chat(model="SmolLM2", system_message="Be brief.",
                                 settings={"temperature": 0.3})
        store.add_message(chat.id, "user", "Hello ünïcode 🎉")
        reply = store.add_message(chat.id, "assistant", "Hi", status="streaming", model="SmolLM2")
        store.update_message(reply.id, content="Hi there", status="complete", tokens=3,
                             tokens_per_s=42.5)
    with ChatStore(path) as store:
        again = store.chat(chat.id)
        assert again.title == "Hello ünïcode 🎉"
        assert again.system_message == "Be brief."
        assert again.settings == {"temperature": 0.3}
        messages = store.messages(chat.id)
        assert [(m.position, m.role, m.content, m.status) for m in messages] == [
            (0, "user", "Hello ünïcode 🎉", "complete"),
            (1, "assistant", "Hi there", "complete"),
        ]
        assert messages[1].tokens == 3 and messages[1].tokens_per_s == 42.5
        assert messages[1].model == "SmolLM2"


def test_chats_are_listed_newest_activity_first(tmp_path: Path) -> None:
    with ChatStore(tmp_path / "c.sqlite3") as store:
        first = store.create_chat("first", created=100.0)
        second = store.create_chat("second", created=200.0)
        third = store.create_chat("third", created=300.0)
        assert [c.title for c in store.list_chats()] == ["third", "second", "first"]
        store.add_message(first.id, "user", "bump", created=400.0)
        assert [c.id for c in store.list_chats()] == [first.id, third.id, second.id]
        assert [c.id for c in store.list_chats(limit=1)] == [first.id]


def test_title_comes_from_the_first_user_message_only_when_untitled(tmp_path: Path) -> None:
    with ChatStore(tmp_path / "c.sqlite3") as store:
        chat = store.create_chat()
        assert store.chat(chat.id).display_title == UNTITLED
        store.add_message(chat.id, "user", "\n## How do I sort a list in Python?\nthanks")
        store.add_message(chat.id, "user", "second question")
        assert store.chat(chat.id).title == "How do I sort a list in Python?"
        named = store.create_chat("Named")
        store.add_message(named.id, "user", "whatever")
        assert store.chat(named.id).title == "Named"
    long = title_from("word " * 40)
    assert len(long) <= 61 and long.endswith("…")


def test_rename_delete_and_missing_chats(tmp_path: Path) -> None:
    with ChatStore(tmp_path / "c.sqlite3") as store:
        chat = store.create_chat("before")
        store.add_message(chat.id, "user", "text")
        assert store.rename_chat(chat.id, "  after  ").title == "after"
        assert [c.title for c in store.search("after")] == ["after"]
        store.delete_chat(chat.id)
        assert store.list_chats() == []
        assert store.message_count() == 0
        assert store.search("text") == []
        with pytest.raises(ChatNotFound, match="no chat with id"):
            store.chat(chat.id)
        with pytest.raises(ChatNotFound):
            store.delete_chat(chat.id)
        with pytest.raises(ChatNotFound):
            store.add_message(chat.id, "user", "x")


def test_search_matches_titles_and_contents_by_word_prefix(tmp_path: Path) -> None:
    with ChatStore(tmp_path / "c.sqlite3") as store:
        a = store.create_chat("Cooking pasta", created=1.0)
        store.add_message(a.id, "user", "How long to boil spaghetti?", created=1.0)
        b = store.create_chat("Rust lifetimes", created=2.0)
        store.add_message(b.id, "assistant", "A borrow must not outlive the owner.", created=2.0)
        assert [c.id for c in store.search("spag")] == [a.id]
        assert [c.id for c in store.search("rust")] == [b.id]
        assert [c.id for c in store.search("borrow owner")] == [b.id]
        assert store.search("borrow spaghetti") == []
        assert [c.id for c in store.search("  ")] == [b.id, a.id]
        # Punctuation that means something to FTS5 is taken literally.
        assert store.search('"unbalanced AND (') == []


def test_like_fallback_when_there_is_no_full_text_index(tmp_path: Path) -> None:
    with ChatStore(tmp_path / "c.sqlite3") as store:
        chat = store.create_chat("Percent 100% sure")
        store.add_message(chat.id, "user", "snake_case names")
        store.has_fts = False
        assert [c.id for c in store.search("100%")] == [chat.id]
        assert [c.id for c in store.search("e_c")] == [chat.id]
        assert store.search("e%c") == []


def test_truncate_removes_a_tail_for_regenerate_and_edit(tmp_path: Path) -> None:
    with ChatStore(tmp_path / "c.sqlite3") as store:
        chat = store.create_chat("t")
        for n, role in enumerate(["user", "assistant", "user", "assistant"]):
            store.add_message(chat.id, role, f"m{n}")
        store.truncate(chat.id, 2)
        assert [m.content for m in store.messages(chat.id)] == ["m0", "m1"]
        store.add_message(chat.id, "user", "again")
        assert [m.position for m in store.messages(chat.id)] == [0, 1, 2]


def test_bad_roles_and_statuses_are_refused(tmp_path: Path) -> None:
    with ChatStore(tmp_path / "c.sqlite3") as store:
        chat = store.create_chat("t")
        with pytest.raises(ChatStoreError, match="unknown role"):
            store.add_message(chat.id, "robot", "x")
        with pytest.raises(ChatStoreError, match="unknown status"):
            store.add_message(chat.id, "user", "x", status="done")
        assert store.messages(chat.id) == []


def test_two_connections_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    with ChatStore(path) as gui, ChatStore(path) as cli:
        chat = cli.create_chat("from the cli")
        cli.add_message(chat.id, "user", "hi")
        assert [c.title for c in gui.list_chats()] == ["from the cli"]
        gui.add_message(chat.id, "assistant", "hello")
        assert len(cli.messages(chat.id)) == 2


def test_insert_chat_keeps_order_and_timestamps(tmp_path: Path) -> None:
    with ChatStore(tmp_path / "c.sqlite3") as store:
        now = time.time()
        chat = store.insert_chat(
            "bulk", [{"role": "user", "content": "a", "created": now},
                     {"role": "assistant", "content": "", "created": now + 5}],
            created=now,
        )
        assert [m.content for m in store.messages(chat.id)] == ["a", ""]
        assert store.chat(chat.id).updated == pytest.approx(now + 5)


def test_ids_are_never_reused_after_a_delete(tmp_path: Path) -> None:
    with ChatStore(tmp_path / "c.sqlite3") as store:
        first = store.create_chat("one")
        store.add_message(first.id, "user", "a")
        last_message = store.add_message(first.id, "assistant", "b")
        store.delete_chat(first.id)
        second = store.create_chat("two")
        assert second.id != first.id
        assert store.add_message(second.id, "user", "c").id > last_message.id
