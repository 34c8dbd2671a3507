"""The Chat page with real Qt widgets offscreen, the real chat store and the real SmolLM2 model."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from app.catalog.starter import starter_path, starter_variant
from app.chats.store import ChatStore
from app.ui.chat.chat_list import ChatListModel, when_label
from app.ui.chat.markdown import build_document, code_blocks, code_frames, split_fences
from app.ui.chat.messages import PAGE, MessageListModel, MessageRole
from app.ui.chat.page import ChatPage
from app.ui.context import AppContext
from app.ui.theme import LIGHT

# The offscreen platform says this whenever a top-level window is shown; it is not our warning.
pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints")

CODE_REPLY = "Here you go:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\nAnd **bold** text."


def make_page(qtbot: QtBot, context: AppContext) -> ChatPage:
    page = ChatPage(context)
    qtbot.addWidget(page)
    page.resize(1100, 760)
    page.show()
    qtbot.waitUntil(lambda: not page.models.busy, timeout=10_000)  # scans and header reads run off the GUI thread
    return page


def install_starter(context: AppContext, smollm2: Path) -> Path:
    starter = context.catalog.starter()
    assert starter is not None
    path = starter_path(context.dirs.models, starter_variant(starter))
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(smollm2, path)
    return path


def seed_chats(context: AppContext, count: int = 3, messages: int = 4) -> list[int]:
    with ChatStore(context.dirs.chats_db) as store:
        ids = []
        for n in range(count):
            rows = [{"role": "user" if i % 2 == 0 else "assistant",
                     "content": f"chat {n} message {i}" if i != 1 else CODE_REPLY,
                     "created": 1000.0 + n * 100 + i} for i in range(messages)]
            ids.append(store.insert_chat(f"Chat number {n}", rows, created=1000.0 + n * 100).id)
        return ids


# -- pure pieces ------------------------------------------------------------------------------


def test_fences_split_code_from_prose_and_tolerate_an_unclosed_fence() -> None:
    segments = split_fences("intro\n```py\nx = 1\n```\nmiddle\n~~~\nraw ``` inside\n~~~\n```js\nopen(")
    assert [(s.code, s.language, s.text, s.closed) for s in segments] == [
        (False, "", "intro", True),
        (True, "py", "x = 1", True),
        (False, "", "middle", True),
        (True, "", "raw ``` inside", True),
        (True, "js", "open(", False),
    ]
    assert code_blocks(CODE_REPLY) == ["def add(a, b):\n    return a + b"]


def test_documents_mark_code_blocks_and_wrap_to_the_width(qapp: QApplication) -> None:
    document = build_document(CODE_REPLY, LIGHT, qapp.font(), 400)
    assert [index for index, _ in code_frames(document)] == [0]
    assert "def add(a, b):" in document.toPlainText()
    assert "**" not in document.toPlainText()
    narrow = build_document("word " * 200, LIGHT, qapp.font(), 200)
    wide = build_document("word " * 200, LIGHT, qapp.font(), 800)
    assert narrow.size().height() > 2 * wide.size().height()
    plain = build_document("**not bold**\nline two", LIGHT, qapp.font(), 400, markdown=False)
    assert plain.toPlainText() == "**not bold**\nline two"


def test_when_label_is_short() -> None:
    now = time.mktime((2026, 3, 12, 15, 0, 0, 0, 0, -1))
    assert when_label(now - 60, now) == time.strftime("%H:%M", time.localtime(now - 60))
    assert when_label(now - 86400, now) == "Yesterday"
    assert when_label(now - 86400 * 30, now) == "10 Feb 2026"


# -- item models ------------------------------------------------------------------------------


def test_chat_list_model_passes_qtmodeltester_and_searches(
    qtmodeltester: ModelTester, context: AppContext
) -> None:
    ids = seed_chats(context)
    with ChatStore(context.dirs.chats_db) as store:
        model = ChatListModel(store)
        qtmodeltester.check(model, force_py=True)
        assert [model.index(r).data(Qt.ItemDataRole.DisplayRole) for r in range(3)] == [
            "Chat number 2", "Chat number 1", "Chat number 0"]
        model.set_query("number 1")  # the tester stays connected and checks the reset
        assert model.rowCount() == 1 and model.chat_at(0).id == ids[1]
        model.set_query("nothing like this")
        assert model.rowCount() == 0


def test_message_model_passes_qtmodeltester_through_paging_and_edits(
    qtmodeltester: ModelTester, context: AppContext
) -> None:
    with ChatStore(context.dirs.chats_db) as store:
        chat = store.insert_chat("long", [
            {"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"}
            for i in range(PAGE + 50)
        ])
        messages = store.messages(chat.id)
    model = MessageListModel()
    model.set_messages(messages)
    qtmodeltester.check(model, force_py=True)
    assert model.rowCount() == PAGE and model.has_earlier()
    assert model.index(0).data(MessageRole.MESSAGE).content == "m50"
    assert model.load_earlier() == 50 and not model.has_earlier()
    assert model.index(0).data(Qt.ItemDataRole.DisplayRole) == "m0"
    last = model.index(model.rowCount() - 1)
    assert last.data(MessageRole.LAST_REPLY) is True
    model.update_message(messages[-1].id, content="changed", status="stopped")
    assert last.data(Qt.ItemDataRole.DisplayRole) == "changed"
    assert last.data(MessageRole.STATUS) == "stopped"
    model.remove_from(messages[-2].position)
    assert model.rowCount() == PAGE + 50 - 2
    model.set_messages(messages[:3])
    assert model.rowCount() == 3 and not model.has_earlier()


# -- the page without a model -----------------------------------------------------------------


def test_first_run_shows_the_welcome_and_links_to_the_other_pages(
    qtbot: QtBot, context: AppContext
) -> None:
    page = make_page(qtbot, context)
    assert page.center.currentWidget() is page.welcome
    assert "No model is installed" in page.welcome.body.text()
    assert "catalogue" in page.welcome.body.text().lower()
    with qtbot.waitSignal(context.events.navigate) as blocker:
        catalogue = next(b for b in page.welcome.findChildren(type(page.composer.button))
                         if b.text() == "Browse the catalogue")
        qtbot.mouseClick(catalogue, Qt.MouseButton.LeftButton)
    assert blocker.args == ["catalog"]
    page.send("hello")
    assert page.banner.isVisible() and "hearth starter" in page.banner.text()
    assert page.store.chat_count() == 0, "nothing is saved without a model"


def test_welcome_names_the_starter_when_it_is_installed(
    qtbot: QtBot, context: AppContext, smollm2: Path
) -> None:
    install_starter(context, smollm2)
    page = make_page(qtbot, context)
    starter = context.catalog.starter()
    assert starter is not None and starter.name in page.welcome.body.text()
    assert page.model_bar.current_name() == starter.name


def test_sidebar_lists_newest_first_renames_searches_and_deletes(
    qtbot: QtBot, context: AppContext
) -> None:
    ids = seed_chats(context)
    page = make_page(qtbot, context)
    model = page.sidebar.model
    assert page.chat is not None and page.chat.id == ids[2], "the newest chat opens"
    assert page.messages.rowCount() == 4
    assert model.setData(model.index(1), "Renamed ✨")
    assert page.store.chat(ids[1]).title == "Renamed ✨"
    page.sidebar.search.setText("renamed")
    qtbot.waitUntil(lambda: model.rowCount() == 1)
    assert model.chat_at(0).id == ids[1]
    page.sidebar.search.clear()
    qtbot.waitUntil(lambda: model.rowCount() == 3)
    page.delete_chat(ids[2])
    assert page.chat is None and page.center.currentWidget() is page.welcome
    assert [model.chat_at(r).id for r in range(model.rowCount())] == [ids[1], ids[0]]
    qtbot.mouseClick(page.sidebar.list.viewport(), Qt.MouseButton.LeftButton,
                     pos=page.sidebar.list.visualRect(model.index(1)).center())
    assert page.chat is not None and page.chat.id == ids[0]
    qtbot.keyClick(page, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert page.chat is None


def test_code_copy_button_and_message_actions(qtbot: QtBot, context: AppContext) -> None:
    seed_chats(context, count=1)
    page = make_page(qtbot, context)
    view = page.view
    qtbot.waitUntil(lambda: view.visualRect(page.messages.index(1)).height() > 0)
    index = page.messages.index(1)
    layout = view.message_delegate.layout(view.visualRect(index), index)
    assert layout is not None and len(layout.copy_buttons) == 1
    button = layout.copy_buttons[0][1].center().toPoint()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=button)
    assert QGuiApplication.clipboard().text() == "def add(a, b):\n    return a + b"
    copy_rect = dict(layout.actions)["copy"].center().toPoint()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=copy_rect)
    assert QGuiApplication.clipboard().text() == CODE_REPLY
    user = page.messages.index(2)
    user_layout = view.message_delegate.layout(view.visualRect(user), user)
    assert user_layout is not None
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=dict(user_layout.actions)["edit"].center().toPoint())
    assert page.composer.text() == "chat 0 message 2" and page.composer.editing_note.isVisibleTo(page)
    qtbot.keyClick(page.composer.edit, Qt.Key.Key_Escape)
    assert page.composer.text() == "" and not page.composer.editing_note.isVisibleTo(page)


def test_composer_enter_sends_and_shift_enter_breaks_the_line(qtbot: QtBot, context: AppContext) -> None:
    page = make_page(qtbot, context)
    sent: list[str] = []
    page.composer.send_requested.disconnect()
    page.composer.send_requested.connect(sent.append)
    qtbot.keyClicks(page.composer.edit, "first line")
    qtbot.keyClick(page.composer.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(page.composer.edit, "second")
    assert sent == []
    one_line = page.composer.edit.height()
    qtbot.keyClick(page.composer.edit, Qt.Key.Key_Return)
    assert sent == ["first line\nsecond"] and page.composer.text() == ""
    assert page.composer.edit.height() < one_line + 1
    qtbot.keyClick(page.composer.edit, Qt.Key.Key_Return)
    assert sent == ["first line\nsecond"], "an empty box sends nothing"


def test_a_2000_message_chat_opens_with_one_page_and_loads_more_on_scroll(
    qtbot: QtBot, context: AppContext
) -> None:
    with ChatStore(context.dirs.chats_db) as store:
        store.insert_chat("huge", [
            {"role": "user" if i % 2 == 0 else "assistant",
             "content": f"message {i}: " + ("some words here " * (i % 7 + 1))}
            for i in range(2000)
        ])
    started = time.perf_counter()
    page = make_page(qtbot, context)
    qtbot.waitUntil(lambda: page.view.verticalScrollBar().maximum() > 0)
    opened = time.perf_counter() - started
    assert page.messages.rowCount() == PAGE
    assert opened < 3.0, f"opening took {opened:.2f} s"
    bar = page.view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.value() == bar.maximum())
    bottom_row = page.view.indexAt(QPoint(10, page.view.viewport().height() - 30)).row()
    assert bottom_row >= PAGE - 2, "opens at the newest message"
    qtbot.wait(100)  # let the first layout settle, as a person would before scrolling
    bar.setValue(0)
    qtbot.waitUntil(lambda: page.messages.rowCount() == 2 * PAGE and bar.value() > 0)
    top = page.view.indexAt(QPoint(10, 2)).data(MessageRole.MESSAGE)
    assert top.content.startswith(f"message {2000 - PAGE}:"), "what was on screen stays there"


# -- a whole conversation with the real model -------------------------------------------------


def live_text(page: ChatPage) -> str:
    writer = page.writer
    return writer.text if writer is not None else ""


@pytest.mark.slow
def test_a_whole_conversation_with_the_real_model(
    qtbot: QtBot, context: AppContext, smollm2: Path
) -> None:
    install_starter(context, smollm2)
    page = make_page(qtbot, context)
    page.settings.spins["temperature"].setValue(0.0)
    page.settings.spins["max_tokens"].setValue(24)
    snapshots: list[str] = []

    def watch(top: object, _bottom: object, _roles: object = None) -> None:
        index = page.messages.index(page.messages.rowCount() - 1)
        if index.data(MessageRole.LIVE):
            snapshots.append(index.data(MessageRole.MESSAGE).content)

    page.messages.dataChanged.connect(watch)

    # Send: Enter in the composer; the model loads first, then the reply streams.
    qtbot.keyClicks(page.composer.edit, "What is the capital of France?")
    qtbot.keyClick(page.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: page.generating, timeout=90_000)
    assert page.chat is not None
    chat_id = page.chat.id
    with ChatStore(context.dirs.chats_db) as other:  # another connection, as after a crash
        saved = other.messages(chat_id)
    assert (saved[0].role, saved[0].content, saved[0].status) == (
        "user", "What is the capital of France?", "complete")
    assert saved[1].role == "assistant" and saved[1].status == "streaming"
    assert page.composer.button.text() == "Stop"
    qtbot.waitUntil(lambda: not page.generating, timeout=120_000)
    first = page.store.messages(chat_id)
    assert [(m.role, m.status) for m in first] == [("user", "complete"), ("assistant", "complete")]
    reply = first[1]
    assert reply.content.strip() and reply.tokens and 0 < reply.tokens <= 24
    assert reply.tokens_per_s and reply.tokens_per_s > 0
    assert page.messages.index(1).data(MessageRole.MESSAGE).content == reply.content
    assert len(set(snapshots)) >= 2, "the reply grew on screen in steps"
    assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in page.last_prompt
    assert page.settings.prompt_view.toPlainText() == page.last_prompt
    assert page.sidebar.model.chat_at(0).id == chat_id
    assert page.sidebar.model.chat_at(0).title == "What is the capital of France?"

    # Stop: a long answer, stopped with Esc once it has started.
    page.settings.spins["max_tokens"].setValue(400)
    page.send("Count from 1 to 300, separated by commas.")
    qtbot.waitUntil(lambda: len(live_text(page)) > 3, timeout=90_000)
    qtbot.keyClick(page.composer.edit, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not page.generating, timeout=10_000)
    stopped = page.store.messages(chat_id)[-1]
    assert stopped.status == "stopped" and stopped.content.strip()
    assert stopped.tokens is not None and stopped.tokens < 400
    assert page.composer.button.text() == "Send"

    # Regenerate: the stopped reply is replaced by a new one.
    page.settings.spins["max_tokens"].setValue(16)
    page.regenerate()
    assert page.generating
    qtbot.waitUntil(lambda: not page.generating, timeout=120_000)
    after = page.store.messages(chat_id)
    assert len(after) == 4 and after[-1].id != stopped.id
    assert after[-1].status == "complete" and after[-1].content.strip()
    assert page.messages.rowCount() == 4

    # Edit the first question and resend: what followed it is replaced.
    page.edit_message(0)
    assert page.composer.text() == "What is the capital of France?"
    page.composer.set_text("Name one colour.")
    qtbot.keyClick(page.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not page.generating and page.messages.rowCount() == 2, timeout=120_000)
    edited = page.store.messages(chat_id)
    assert [(m.role, m.status) for m in edited] == [("user", "complete"), ("assistant", "complete")]
    assert edited[0].content == "Name one colour." and edited[1].content.strip()
    page.shutdown()

    # Restart: a new page on the same HEARTH_HOME opens the same chat, whole.
    again = make_page(qtbot, context)
    assert again.chat is not None and again.chat.id == chat_id
    shown = [again.messages.index(r).data(MessageRole.MESSAGE) for r in range(again.messages.rowCount())]
    assert [(m.role, m.content, m.status) for m in shown] == [
        (m.role, m.content, m.status) for m in edited]
    assert again.chat.settings["sampling"]["max_tokens"] == 16
    again.shutdown()


def test_stats_line_says_what_happened_to_a_reply() -> None:
    from app.chats.records import StoredMessage
    from app.ui.chat.message_delegate import stats_line

    reply = StoredMessage(1, 1, 1, "assistant", "x", 0.0, "complete", 42, 31.46, "SmolLM2")
    assert stats_line(reply, live=False) == "42 tokens  ·  31.5 tok/s  ·  SmolLM2"
    assert stats_line(reply, live=True) == "Generating…"
    stopped = StoredMessage(1, 1, 1, "assistant", "x", 0.0, "stopped", 3, None, None)
    assert stats_line(stopped, live=False) == "Stopped  ·  3 tokens"
    crashed = StoredMessage(1, 1, 1, "assistant", "x", 0.0, "streaming", None, None, None)
    assert stats_line(crashed, live=False) == "Interrupted", "left streaming by a killed process"
    assert stats_line(StoredMessage(1, 1, 0, "user", "q", 0.0), live=False) == ""


def test_dark_theme_repaints_without_stale_documents(qtbot: QtBot, context: AppContext) -> None:
    from app.ui.theme import DARK

    seed_chats(context, count=1)
    page = make_page(qtbot, context)
    delegate = page.view.message_delegate
    index = page.messages.index(1)
    light_doc = delegate.layout(page.view.visualRect(index), index)
    page._retheme(DARK)
    dark_doc = delegate.layout(page.view.visualRect(index), index)
    assert light_doc is not None and dark_doc is not None
    assert dark_doc.document is not light_doc.document and delegate.theme is DARK
    assert not page.view.grab().isNull()


def test_chat_requested_opens_a_new_chat_with_that_model(
    qtbot: QtBot, context: AppContext, smollm2: Path
) -> None:
    path = install_starter(context, smollm2)
    seed_chats(context, count=1)
    page = make_page(qtbot, context)
    assert page.chat is not None
    with qtbot.waitSignal(context.events.navigate) as blocker:
        context.events.chat_requested.emit(str(context.dirs.models / "missing.gguf"))
    assert blocker.args == ["chat"]
    assert page.banner.isVisible() and "missing.gguf" in page.banner.text()
    context.events.chat_requested.emit(str(path))
    assert page.chat is None and page.model_bar.current_path() == str(path)
    assert page.engine.loading
    qtbot.waitUntil(lambda: page.engine.info is not None, timeout=60_000)
    assert page.model_bar.load_button.text() == "Unload"
    assert page.model_bar.state.text().startswith("Ready")
    page.shutdown()


def test_a_model_that_fails_to_load_keeps_the_message(qtbot: QtBot, context: AppContext) -> None:
    broken = context.dirs.models / "someone" / "broken" / "main" / "broken.Q4_K_M.gguf"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    page = make_page(qtbot, context)
    assert page.model_bar.select(str(broken))
    assert not page.banner.isVisible(), "a broken file is reported when used, not on sight"
    qtbot.keyClicks(page.composer.edit, "hello there")
    qtbot.keyClick(page.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: page.banner.isVisible() and not page.engine.loading, timeout=10_000)
    assert "broken.Q4_K_M.gguf" in page.banner.text()
    assert page.composer.text() == "hello there", "the unsent message is back in the box"
    assert page.store.chat_count() == 0 and not page.engine.loading
    assert page.model_bar.load_button.isEnabled()


def test_a_damaged_history_file_is_left_alone_and_explained(qtbot: QtBot, context: AppContext) -> None:
    context.dirs.chats_db.parent.mkdir(parents=True, exist_ok=True)
    context.dirs.chats_db.write_bytes(b"not a database " * 200)
    page = make_page(qtbot, context)
    assert page.banner.isVisible() and "move it aside" in page.banner.text()
    assert "not saved" in page.banner.text()
    assert context.dirs.chats_db.read_bytes() == b"not a database " * 200
    assert page.center.currentWidget() is page.welcome


def test_a_model_file_opened_from_outside_the_models_folder(
    qtbot: QtBot, context: AppContext, smollm2: Path, tmp_path: Path
) -> None:
    """`hearth some/where/model.gguf` (the desktop's file association) chats with it in place."""
    outside = tmp_path / "Downloads" / "my-model.gguf"
    outside.parent.mkdir()
    shutil.copyfile(smollm2, outside)
    page = make_page(qtbot, context)
    context.events.chat_requested.emit(str(outside))
    assert page.model_bar.current_path() == str(outside)
    assert "opened file" in page.model_bar.picker.currentText()
    assert not page.banner.isVisible()
    qtbot.waitUntil(lambda: page.engine.info is not None, timeout=60_000)
    assert outside.is_file() and not list(context.dirs.models.rglob("*.gguf"))  # nothing copied
    page.shutdown()


@pytest.mark.slow
def test_the_page_talks_through_the_process_s_one_engine_controller(
    qtbot: QtBot, context: AppContext, smollm2: Path
) -> None:
    """The window's chat uses the services' engine controller: no worker until the first load; the
    controller knows the reply in progress; closing the page ends the worker."""
    install_starter(context, smollm2)
    controller = context.services.engine
    page = make_page(qtbot, context)
    assert page.engine.controller is controller
    assert not controller.started, "no worker process is started before a model is loaded"
    page.settings.spins["max_tokens"].setValue(8)
    page.send("Say hello.")
    qtbot.waitUntil(lambda: page.generating, timeout=90_000)
    assert controller.started and controller.request_id == page.stream.request_id
    qtbot.waitUntil(lambda: not page.generating, timeout=120_000)
    assert controller.request_id is None, "the finished reply is no longer current"
    assert page.chat is not None and page.store.messages(page.chat.id)[-1].status == "complete"
    page.shutdown()
    assert not controller.started
    context.services.shutdown()


@pytest.mark.slow
def test_the_models_folder_is_scanned_off_the_gui_thread_and_a_message_waits_for_it(
    qtbot: QtBot, context: AppContext, smollm2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page shows at once; the scan runs on a worker thread; a message typed meanwhile is sent
    when the models are known (no false "no model installed")."""
    import threading

    import app.ui.chat.chat_models as chat_models

    starter = install_starter(context, smollm2)
    scanned_on: list[threading.Thread] = []
    gate = threading.Event()
    real_scan = chat_models.installed_models

    def slow_scan(*args: object) -> list[chat_models.InstalledModel]:
        scanned_on.append(threading.current_thread())
        gate.wait(10)  # a slow disk
        return real_scan(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(chat_models, "installed_models", slow_scan)
    page = ChatPage(context)
    qtbot.addWidget(page)
    page.show()
    assert page.models.scanning and page.model_bar.current_path() is None
    assert page.model_bar.picker.currentText() == "Looking for models…"
    page.settings.spins["max_tokens"].setValue(4)
    page.send("Hello?")
    assert not page.banner.isVisible() and page.chat is None, "the message waits for the scan"
    gate.set()
    qtbot.waitUntil(lambda: not page.models.scanning, timeout=10_000)
    assert scanned_on and scanned_on[0] is not threading.main_thread()
    assert page.model_bar.current_path() == str(starter)
    qtbot.waitUntil(lambda: page.chat is not None and not page.generating and page.messages.rowCount() == 2,
                    timeout=120_000)
    assert page.chat is not None
    first = page.store.messages(page.chat.id)[0]
    assert (first.role, first.content) == ("user", "Hello?")
    page.shutdown()


@pytest.mark.slow
def test_the_model_s_header_is_read_off_the_gui_thread_from_start_to_reply(
    qtbot: QtBot, context: AppContext, smollm2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start-up, the settings panel (the model's default system message and sampling, the prompt preview),
    switching models with the panel open, a message and its reply: each model's GGUF header and template
    are read, but never on the GUI thread."""
    import threading

    import app.ui.chat.chat_models as chat_models
    from tests.engine.tiny_gguf import write_tiny_gguf

    starter = install_starter(context, smollm2)
    tiny = write_tiny_gguf(starter.parent / "other-tiny.gguf", chatml_specials=True,
                           chat_template="{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}",
                           name="Other Tiny")
    reads: list[bool] = []  # True: on the GUI thread
    real_read = chat_models.resolve_chat_format

    def recorded(*args: Any, **kwargs: Any) -> Any:
        reads.append(threading.current_thread() is threading.main_thread())
        return real_read(*args, **kwargs)

    monkeypatch.setattr(chat_models, "resolve_chat_format", recorded)
    page = ChatPage(context)
    qtbot.addWidget(page)
    page.show()
    page.model_bar.settings_button.setChecked(True)  # the panel open at once, before anything was read
    qtbot.waitUntil(lambda: "SmolLM" in page.settings.prompt_view.toPlainText(), timeout=10_000)
    picker = page.model_bar.picker
    picker.setCurrentIndex(picker.findData(str(tiny)))  # the user picks the other model, panel open
    qtbot.waitUntil(lambda: "SmolLM" not in page.settings.prompt_view.toPlainText(), timeout=10_000)
    picker.setCurrentIndex(picker.findData(str(starter)))
    page.settings.spins["max_tokens"].setValue(4)
    page.send("Hi!")
    qtbot.waitUntil(lambda: page.chat is not None and not page.generating and page.messages.rowCount() == 2,
                    timeout=120_000)
    assert len(reads) >= 2 and not any(reads), f"{reads.count(True)} of {len(reads)} reads ran on the GUI thread"
    page.shutdown()
