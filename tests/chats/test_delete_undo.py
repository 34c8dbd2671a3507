"""Deleting chats: ``hearth chats delete ID``, the store's undo, and the window's Delete with Undo (pytest-qt)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.chats.store import ChatNotFound, ChatStore
from app.cli import main
from app.ui.application import create_context
from app.ui.chat.chat_list import ChatListRole, when_label
from app.ui.chat.message_delegate import stats_line
from app.ui.chat.messages import MessageRole
from app.ui.chat.page import ChatPage
from app.ui.context import AppContext

pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints")


def seed(store: ChatStore, count: int = 3) -> list[int]:
    ids = []
    for n in range(count):
        rows = [{"role": "user", "content": f"question {n} about zebras", "created": 1000.0 + 10 * n},
                {"role": "assistant", "content": f"answer {n}", "created": 1001.0 + 10 * n,
                 "tokens": 2, "model": "M"}]
        ids.append(store.insert_chat(f"Chat {n}", rows, created=1000.0 + 10 * n,
                                     settings={"sampling": {"temperature": 0.3}}).id)
    return ids


def test_cli_delete_removes_chats_and_refuses_unknown_ids_first(
    capsys: pytest.CaptureFixture[str], hearth_home: Path
) -> None:
    with ChatStore.open_default() as store:
        ids = seed(store)
    assert main(["chats", "delete", str(ids[0]), "999"]) == 1
    out, err = capsys.readouterr()
    assert err == "hearth: error: no chat with id 999; `hearth chats list` shows the ids\n"
    assert out == "", "a typo in one id deletes nothing"
    assert main(["chats", "delete", str(ids[0]), str(ids[2])]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == [f"Deleted chat {ids[0]}: Chat 0 (2 messages)",
                                f"Deleted chat {ids[2]}: Chat 2 (2 messages)"]
    with ChatStore.open_default() as store:
        assert [c.id for c in store.list_chats()] == [ids[1]]
        assert store.message_count() == 2


def test_restore_puts_back_the_same_ids_messages_settings_and_search(hearth_home: Path) -> None:
    with ChatStore.open_default() as store:
        ids = seed(store)
        before_chat, before_messages = store.chat(ids[1]), store.messages(ids[1])
        deleted = store.delete_chat(ids[1])
        with pytest.raises(ChatNotFound):
            store.chat(ids[1])
        assert [c.id for c in store.search("zebras")] == [ids[2], ids[0]]
        restored = store.restore_chat(deleted)
        assert restored == before_chat and store.messages(ids[1]) == before_messages
        assert [c.id for c in store.search("zebras")] == [ids[2], ids[1], ids[0]]
        newer = store.create_chat("after")
        assert newer.id == ids[-1] + 1


@pytest.fixture
def context(qapp: QApplication, hearth_home: Path) -> AppContext:
    return create_context(qapp)


def make_page(qtbot: QtBot, context: AppContext) -> ChatPage:
    page = ChatPage(context)
    qtbot.addWidget(page)
    page.resize(1100, 760)
    page.show()
    qtbot.waitUntil(lambda: not page.models.busy, timeout=10_000)  # scans and header reads run off the GUI thread
    return page


def sidebar_ids(page: ChatPage) -> list[int]:
    model = page.sidebar.model
    return [model.chat_at(row).id for row in range(model.rowCount())]  # type: ignore[union-attr]


def test_window_delete_then_undo_restores_the_chat_with_its_messages(
    qtbot: QtBot, context: AppContext
) -> None:
    with ChatStore(context.dirs.chats_db) as store:
        ids = seed(store)
    page = make_page(qtbot, context)
    assert page.chat is not None and page.chat.id == ids[2]
    # The Delete key on the open chat: gone at once, no dialog, Undo offered.
    page.sidebar.list.setFocus()
    page.sidebar.select(ids[2])
    qtbot.keyClick(page.sidebar.list, Qt.Key.Key_Delete)
    assert sidebar_ids(page) == [ids[1], ids[0]]
    assert page.chat is None and page.center.currentWidget() is page.welcome
    assert page.sidebar.undo_bar.isVisible() and "Chat 2" in page.sidebar.undo_label.text()
    assert page.store.message_count() == 4
    with qtbot.waitSignal(page.sidebar.chat_restored, timeout=2000) as restored:
        qtbot.mouseClick(page.sidebar.undo_button, Qt.MouseButton.LeftButton)
    assert restored.args == [ids[2]]
    assert sidebar_ids(page) == [ids[2], ids[1], ids[0]]
    assert not page.sidebar.undo_bar.isVisible()
    assert page.chat is not None and page.chat.id == ids[2], "the restored chat is open again"
    assert [page.messages.index(r).data(MessageRole.MESSAGE).content for r in range(2)] == [
        "question 2 about zebras", "answer 2"]
    assert page.chat.settings == {"sampling": {"temperature": 0.3}}
    # Ctrl+Z in the list undoes a delete too.
    page.activateWindow()
    page.sidebar.list.setFocus()
    qtbot.waitUntil(lambda: page.sidebar.list.hasFocus())
    page.sidebar.select(ids[0])
    qtbot.keyClick(page.sidebar.list, Qt.Key.Key_Delete)
    assert sidebar_ids(page) == [ids[2], ids[1]]
    qtbot.keyClick(page.sidebar.list, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert sidebar_ids(page) == [ids[2], ids[1], ids[0]] and page.store.message_count() == 6


def test_window_undo_is_offered_for_a_while_then_forgotten(qtbot: QtBot, context: AppContext) -> None:
    with ChatStore(context.dirs.chats_db) as store:
        ids = seed(store)
    page = make_page(qtbot, context)
    page.sidebar._undo_timer.setInterval(50)
    page.delete_chat(ids[0])
    assert page.sidebar.can_undo and page.chat is not None and page.chat.id == ids[2]
    qtbot.waitUntil(lambda: not page.sidebar.undo_bar.isVisible(), timeout=2000)
    assert not page.sidebar.can_undo
    page.sidebar.undo_delete()  # nothing to undo any more: a no-op
    assert sidebar_ids(page) == [ids[2], ids[1]]


def test_chat_list_survives_times_the_platform_cannot_show() -> None:
    assert when_label(1e300) == "" and when_label(float("nan")) == ""


def test_window_shows_an_interrupted_reply_and_offers_continue_and_regenerate(
    qtbot: QtBot, context: AppContext
) -> None:
    with ChatStore(context.dirs.chats_db) as store:
        chat = store.create_chat("cut off")
        store.add_message(chat.id, "user", "Count to ten")
        reply = store.add_message(chat.id, "assistant", "One, two, three", status="interrupted")
    page = make_page(qtbot, context)
    assert page.chat is not None and page.chat.id == chat.id
    index = page.messages.index(1)
    message = index.data(MessageRole.MESSAGE)
    assert message.id == reply.id and message.content == "One, two, three"
    assert stats_line(message, live=False).startswith("Interrupted")
    view = page.view
    qtbot.waitUntil(lambda: view.visualRect(index).height() > 0)
    layout = view.message_delegate.layout(view.visualRect(index), index)
    assert layout is not None
    assert [name for name, _ in layout.actions] == ["copy", "continue", "regenerate"]
    sidebar = page.sidebar.model
    assert sidebar.index(0).data(ChatListRole.REPLY_STATE) == "interrupted"
    # No model loaded: Continue says what to do, and the text stays.
    page._row_action("continue", 1)
    assert page.banner.isVisible() and "Load a model to continue" in page.banner.text()
    assert page.store.message(reply.id).content == "One, two, three"


@pytest.mark.slow
def test_continue_carries_an_interrupted_reply_on_with_a_real_model(
    qtbot: QtBot, context: AppContext, tmp_path: Path
) -> None:
    from tests.engine.tiny_gguf import write_tiny_gguf

    model = write_tiny_gguf(tmp_path / "tiny.gguf", chatml_specials=True)
    with ChatStore(context.dirs.chats_db) as store:
        chat = store.create_chat("cut off", settings={"sampling": {"max_tokens": 12, "temperature": 0}})
        store.add_message(chat.id, "user", "Count to ten")
        reply = store.add_message(chat.id, "assistant", "One, two, three", status="interrupted")
    page = make_page(qtbot, context)
    try:
        page.chat_with(str(model))
        qtbot.waitUntil(lambda: page.engine.info is not None, timeout=60_000)
        page.open_chat(chat.id)
        page._row_action("continue", 1)
        assert page.generating and page.messages.live_id == reply.id
        assert page.store.message(reply.id).status == "streaming"
        assert page.last_prompt.endswith("<|im_start|>assistant\nOne, two, three"), page.last_prompt[-80:]
        qtbot.waitUntil(lambda: not page.generating, timeout=60_000)
        stored = page.store.message(reply.id)
        assert stored.status == "complete" and stored.tokens
        assert stored.content.startswith("One, two, three") and len(stored.content) > len("One, two, three")
        assert page.messages.rowCount() == 2, "the same reply grew; no new row"
    finally:
        page.shutdown()


@pytest.mark.parametrize(("answer", "deleted"), [("n", False), ("y", True)])
def test_cli_delete_asks_first_in_a_terminal(hearth_home: Path, answer: str, deleted: bool) -> None:
    import os
    import pty
    import subprocess
    import sys

    with ChatStore.open_default() as store:
        (chat_id,) = seed(store, 1)
    controller, terminal = pty.openpty()
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "app", "chats", "delete", str(chat_id)], stdin=terminal,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
        os.write(controller, f"{answer}\n".encode())
        out, err = child.communicate(timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    assert "Delete chat 1 “Chat 0” and all its messages? [y/N]" in out + err
    assert (child.returncode == 0) is deleted and ("Nothing deleted." in err) is not deleted
    with ChatStore.open_default() as store:
        assert (store.chat_count() == 0) is deleted
