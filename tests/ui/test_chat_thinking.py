"""Thinking blocks in the chat (collapsed under "Thinking", live while streaming) and a refusing template's remedy."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.chats.store import ChatStore
from app.ui.chat.message_delegate import MessageDelegate
from app.ui.chat.page import ChatPage
from app.ui.context import AppContext
from tests.engine.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints")

THOUGHT = "17 × 23 = 340 + 51 = 391, checked twice"
REPLY = f"<think>\n{THOUGHT}\n</think>\n\n17 × 23 = **391**."
GEMMA = (Path(__file__).parents[1] / "engine" / "llama_templates" / "google-gemma-2-2b-it.jinja").read_text()


def _page_with(qtbot: QtBot, context: AppContext, rows: list[dict[str, object]]) -> ChatPage:
    with ChatStore(context.dirs.chats_db) as store:
        store.insert_chat("Thinking", rows, created=1000.0)
    page = ChatPage(context)
    qtbot.addWidget(page)
    page.resize(1100, 760)
    page.show()
    qtbot.waitUntil(lambda: not page.models.busy, timeout=10_000)  # scans and header reads run off the GUI thread
    qtbot.waitExposed(page)
    return page


def test_a_thinking_block_is_collapsed_and_opens_on_click(qtbot: QtBot, context: AppContext) -> None:
    page = _page_with(qtbot, context, [{"role": "user", "content": "17 × 23?", "created": 1.0},
                                       {"role": "assistant", "content": REPLY, "created": 2.0}])
    view = page.view
    delegate = view.itemDelegate()
    assert isinstance(delegate, MessageDelegate)
    index = page.messages.index(1)
    rect = view.visualRect(index)
    layout = delegate.layout(rect, index)
    assert layout is not None and layout.thinking_header is not None
    assert layout.thinking_label == "▸ Thinking"
    assert layout.thinking_document is None  # collapsed
    body = layout.document.toPlainText()
    assert "391" in body and THOUGHT not in body and "<think>" not in body
    closed_height = view.sizeHintForIndex(index).height()
    header = layout.thinking_header.center().toPoint()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=header)
    opened = delegate.layout(view.visualRect(index), index)
    assert opened is not None and opened.thinking_document is not None
    assert THOUGHT in opened.thinking_document.toPlainText()
    assert opened.thinking_label == "▾ Thinking"
    assert view.sizeHintForIndex(index).height() > closed_height
    page.grab().save(str(context.dirs.cache / "thinking.png"))


def test_thinking_streams_live_into_the_header(qtbot: QtBot, context: AppContext) -> None:
    page = _page_with(qtbot, context, [{"role": "user", "content": "hi", "created": 1.0},
                                       {"role": "assistant", "content": "", "created": 2.0}])
    reply = page.messages.messages()[1]
    page.messages.live_id = reply.id
    delegate = page.view.itemDelegate()
    assert isinstance(delegate, MessageDelegate)
    labels = []
    for text in ("<think>\nfirst", "<think>\nfirst second", "<think>\nfirst second</think>\nHello"):
        page.messages.update_message(reply.id, content=text)
        index = page.messages.index(1)
        layout = delegate.layout(page.view.visualRect(index), index)
        assert layout is not None
        labels.append(layout.thinking_label)
        qtbot.wait(1)
    assert labels[0] == "▸ Thinking…  first" and labels[1] == "▸ Thinking…  first second"
    assert labels[2] == "▸ Thinking"
    index = page.messages.index(1)
    layout = delegate.layout(page.view.visualRect(index), index)
    assert layout is not None and layout.document.toPlainText() == "Hello"


def test_a_template_that_refuses_the_system_message_offers_the_remedy(
        qtbot: QtBot, context: AppContext) -> None:
    context.dirs.models.mkdir(parents=True, exist_ok=True)
    model = write_tiny_gguf(context.dirs.models / "gemma-tiny.gguf", chat_template=GEMMA, name="Gemma Tiny")
    page = _page_with(qtbot, context, [{"role": "user", "content": "Hello", "created": 1.0}])
    assert page.chat is not None
    page.chat = page.store.update_chat(page.chat.id, system_message="Answer in French.")
    page.refresh_models()
    qtbot.waitUntil(lambda: not page.models.busy, timeout=10_000)  # scans and header reads run off the GUI thread
    page.models._formats.clear()
    assert page.model_bar.current_path() == str(model)
    page._start_reply()  # the model is not loaded: the prompt is built first, and refused
    assert page.banner.isVisible() and "System role not supported" in page.banner.text()
    assert page.remedy_button.isVisible()
    assert page.remedy_button.text() == "Fold the system message into my first message"
    page.remedy_button.click()
    assert not page.remedy_button.isVisible()
    chat = page.store.chat(page.chat.id)
    assert chat.settings["template_remedy"] == "fold_system"
    built = page.build_prompt(page.messages.messages())
    assert built is not None
    assert "<start_of_turn>user\nAnswer in French.\n\nHello<end_of_turn>" in built[0]
