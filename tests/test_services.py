"""AppServices: built once, the chat store opened on first use, a damaged one explained, shut down once."""

from __future__ import annotations

from app.paths import app_dirs
from app.services import AppServices


def test_services_start_lazily_and_shut_down_once() -> None:
    dirs = app_dirs()
    services = AppServices.start(dirs)
    assert not dirs.chats_db.exists(), "nothing is opened before a front end asks"
    assert services.running_downloads() == 0
    chat = services.chats.create_chat(model="m")
    assert services.chats is services.chats and services.chats.chat(chat.id).model == "m"
    assert services.chat_store_problem is None
    services.shutdown()
    services.shutdown()  # a second call is harmless


def test_a_damaged_chat_store_is_explained_and_left_alone() -> None:
    dirs = app_dirs()
    dirs.chats_db.parent.mkdir(parents=True, exist_ok=True)
    dirs.chats_db.write_bytes(b"not a database " * 100)
    services = AppServices.start(dirs)
    services.chats.create_chat()  # in memory this session
    assert services.chat_store_problem is not None and "not saved" in services.chat_store_problem
    assert dirs.chats_db.read_bytes() == b"not a database " * 100
    services.shutdown()
