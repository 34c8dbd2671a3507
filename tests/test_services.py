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


def test_one_engine_per_process_started_on_first_use_and_ended_at_shutdown() -> None:
    import psutil

    services = AppServices.start(app_dirs())
    controller = services.engine
    assert not controller.started, "no worker process before a model is loaded"
    pid = getattr(controller.engine, "pid", None)  # first use: the local llama.cpp worker starts
    assert controller.started and controller.kind is None and pid is not None
    assert services.engine is controller, "the one controller of this process"
    worker = psutil.Process(pid)
    services.shutdown()
    assert not controller.started
    worker.wait(timeout=10)  # the worker process ends with the services (TimeoutExpired if it lingers)
