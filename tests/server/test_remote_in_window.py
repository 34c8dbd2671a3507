"""The chat window with a remote endpoint as its model source: pick, stream, stop, regenerate, store."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.remote.endpoints import Endpoint, EndpointStore
from app.remote.messages import remote_path
from app.ui.application import create_context
from app.ui.chat.page import ChatPage
from tests.server.conftest import Served
from tests.server.fake_endpoint import Misbehaving

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_a_remote_model_chats_like_a_local_one(qtbot: QtBot, qapp: QApplication, served: Served) -> None:
    EndpointStore().add(Endpoint("box", served.url, None, (served.model_id,)))
    context = create_context(qapp)
    page = ChatPage(context)
    qtbot.addWidget(page)
    page.show()
    qtbot.waitUntil(lambda: not page.models.busy, timeout=10_000)  # scans and header reads run off the GUI thread
    path = remote_path("box", served.model_id)
    labels = [page.model_bar.picker.itemText(i) for i in range(page.model_bar.picker.count())]
    assert any("remote: box" in label for label in labels), labels
    assert page.model_bar.select(path)
    page.settings.spins["temperature"].setValue(0.0)
    page.settings.spins["max_tokens"].setValue(16)

    page.send("What is the capital of France?")

    def replied() -> bool:
        rows = page.messages.messages()
        return not page.generating and len(rows) == 2 and rows[1].status not in ("streaming", "")

    qtbot.waitUntil(replied, timeout=120_000)
    assert "remote: box" in page.model_bar.state.text()
    assert page.chat is not None
    first = page.store.messages(page.chat.id)
    assert [(m.role, m.status) for m in first] == [("user", "complete"), ("assistant", "complete")], \
        page.banner.text()
    assert first[1].content.strip()
    assert page.chat.model == served.model_id and not page.banner.isVisible()

    # Regenerate: the reply is replaced (the chat still has one), complete again.
    page.regenerate()
    qtbot.waitUntil(lambda: replied() and page.messages.messages()[1].id != first[1].id, timeout=120_000)
    again = page.store.messages(page.chat.id)
    assert [(m.role, m.status) for m in again] == [("user", "complete"), ("assistant", "complete")]
    assert again[1].content.strip()

    # Stop mid-reply: what came is kept, the status says stopped.
    page.settings.spins["max_tokens"].setValue(400)
    page.send("Tell me a long story about a dragon.")
    qtbot.waitUntil(lambda: page.generating and bool(page.messages.messages()[-1].content), timeout=60_000)
    page.stop()
    qtbot.waitUntil(lambda: not page.generating, timeout=30_000)
    stopped = page.store.messages(page.chat.id)[-1]
    assert stopped.status == "stopped" and stopped.content.strip()
    page.shutdown()


def test_a_remote_endpoint_that_is_down_says_so_once(qtbot: QtBot, qapp: QApplication) -> None:
    EndpointStore().add(Endpoint("gone", "http://127.0.0.1:9", None, ("m",)))
    page = ChatPage(create_context(qapp))
    qtbot.addWidget(page)
    page.show()
    qtbot.waitUntil(lambda: not page.models.busy, timeout=10_000)  # scans and header reads run off the GUI thread
    assert page.model_bar.select(remote_path("gone", "m"))
    page.send("hello?")
    qtbot.waitUntil(lambda: not page.engine.loading and page.banner.isVisible(), timeout=30_000)
    assert page.composer.text() == "hello?"  # nothing the user typed is lost
    page.shutdown()


def test_a_reply_dropped_mid_stream_keeps_its_words_and_says_so_once(qtbot: QtBot, qapp: QApplication) -> None:
    flaky = Misbehaving("drop")
    EndpointStore().add(Endpoint("flaky", flaky.url, None, ("flaky",)))
    page = ChatPage(create_context(qapp))
    qtbot.addWidget(page)
    page.show()
    qtbot.waitUntil(lambda: not page.models.busy, timeout=10_000)  # scans and header reads run off the GUI thread
    assert page.model_bar.select(remote_path("flaky", "flaky"))
    page.send("Capital of France?")
    qtbot.waitUntil(lambda: page.chat is not None and not page.generating and page.banner.isVisible(),
                    timeout=30_000)
    assert page.chat is not None
    reply = page.store.messages(page.chat.id)[-1]
    assert (reply.role, reply.content, reply.status) == ("assistant", "Paris is", "error")
    assert "dropped" in page.banner.text() and "\n" not in page.banner.text()
    page.shutdown()
    flaky.close()
