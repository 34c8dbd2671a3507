"""The window and the CLI check sampling the same way: the window names a bad value and keeps the last good one."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from app.chats.store import ChatStore
from app.ui.chat.page import ChatPage
from app.ui.context import AppContext


def test_a_bad_stored_sampling_value_is_named_and_the_last_good_one_kept(
        qtbot: QtBot, context: AppContext) -> None:
    context.dirs.chats_db.parent.mkdir(parents=True, exist_ok=True)
    with ChatStore(context.dirs.chats_db) as store:
        chat = store.insert_chat("imported", [{"role": "user", "content": "hi"}],
                                 settings={"sampling": {"temperature": "hot", "top_k": 5}})
    page = ChatPage(context)
    qtbot.addWidget(page)
    page.show()
    qtbot.waitUntil(lambda: not page.models.busy, timeout=10_000)  # scans and header reads run off the GUI thread
    page.open_chat(chat.id)
    page._toggle_settings(True)
    assert page.banner.isVisible()
    assert "temperature must be a number, not 'hot'" in page.banner.text()
    assert page.settings.spins["top_k"].value() == 5, "the good values are kept"
    assert page.settings.spins["temperature"].value() == 0.7, "the bad one falls back to the value before it"
    page.shutdown()
