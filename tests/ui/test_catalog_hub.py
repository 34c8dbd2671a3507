"""The Catalogue page's tree and its "Search the Hub" panel, against the loopback Hub, offscreen."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from app.catalog.hardware import Hardware
from app.catalog.user_catalog import user_catalog_path
from app.ui.catalog.page import CatalogPage
from app.ui.catalog.table_model import Column, Role
from app.ui.context import AppContext
from tests.engine.tiny_gguf import write_tiny_gguf
from tests.hub.hub_server import Fault, HubServer

CHATML = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubServer]:
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    server = HubServer().start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    gguf = write_tiny_gguf(tmp_path / "t.gguf", chat_template=CHATML, chatml_specials=True, name="Tiny Chat")
    server.add_repo("someone/Tiny-Chat-GGUF", {"main": {"tiny-chat.Q4_K_M.gguf": gguf.read_bytes(),
                                                        "tiny-chat.Q8_0.gguf": gguf.read_bytes()}})
    server.add_repo("someone/Tiny-Chat-AWQ", {"main": {"model.safetensors": b"\0" * 10}})
    server.search_info["someone/Tiny-Chat-GGUF"] = {"downloads": 5000, "likes": 12}
    yield server
    server.stop()


def make_page(qtbot: QtBot, context: AppContext, hardware: Hardware) -> CatalogPage:
    page = CatalogPage(context)
    qtbot.addWidget(page)
    page.set_hardware(hardware)
    page.resize(1280, 800)
    return page


def test_tree_groups_variants_under_full_model_names(qtbot: QtBot, context: AppContext, laptop: Hardware,
                                                     qtmodeltester: ModelTester) -> None:
    page = make_page(qtbot, context, laptop)
    tree = page.tree
    qtmodeltester.check(tree, force_py=True)
    names = [tree.index(r, 0).data() for r in range(tree.rowCount())]
    assert len(names) == len(context.catalog.models)
    assert names[1].startswith("Llama2 13B Orca v2 8K   ·   OpenAssistant · 13B · 18 GGUF and GPTQ variants")
    assert all(page.table.isFirstColumnSpanned(r, QModelIndex()) for r in range(tree.rowCount()))
    llama = tree.index(1, 0)
    assert tree.rowCount(llama) == 18 and page.table.isExpanded(llama)
    assert tree.index(0, Column.SOURCE, llama).data() == "curated"
    assert tree.index(0, 0, llama).data() == "main"
    page.search.setText("beluga q8")
    assert tree.rowCount() == 1 and tree.rowCount(tree.index(0, 0)) == 1
    selected = page.selected()
    assert selected is not None and selected[1].id == "stablebeluga2-70b:gguf:Q8_0"


def test_search_the_hub_then_add_and_remove(qtbot: QtBot, context: AppContext, laptop: Hardware,
                                            hub: HubServer, tmp_path: Path) -> None:
    page = make_page(qtbot, context, laptop)
    panel = page.hub_panel
    panel.query.setText("tiny chat")
    with qtbot.waitSignal(panel.worker.searched, timeout=10_000):
        qtbot.mouseClick(panel.search_button, Qt.MouseButton.LeftButton)
    assert [r.repo for r in panel.results.results] == ["someone/Tiny-Chat-GGUF", "someone/Tiny-Chat-AWQ"]
    assert panel.results.index(0, 2).data() == "5.0k" and panel.add_button.isEnabled()

    panel.table.selectRow(1)  # the AWQ repo: one line, nothing added
    with qtbot.waitSignal(panel.worker.failed, timeout=10_000):
        qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert "AWQ" in panel.status.text() and not user_catalog_path().exists()

    panel.table.selectRow(0)
    with qtbot.waitSignal(panel.added, timeout=20_000):
        qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert "Added tiny-chat" in panel.status.text()
    selected = page.selected()
    assert selected is not None and selected[0].name == "Tiny Chat" and selected[0].source_label == "GGUF repo"
    assert context.catalog.model("tiny-chat").template.id == "chatml"
    assert "Prompt format: ChatML" in page.details.toPlainText()
    assert page.remove_button.isVisibleTo(page)
    group = next(r for r in range(page.tree.rowCount()) if page.tree.index(r, 0).data(Role.MODEL).id == "tiny-chat")
    assert "GGUF repo" in page.tree.index(group, 0).data()
    if os.environ.get("HEARTH_SCREENSHOT"):
        page.show()
        page.grab().save(os.environ["HEARTH_SCREENSHOT"])

    with qtbot.waitSignal(panel.worker.removed, timeout=10_000):
        qtbot.mouseClick(page.remove_button, Qt.MouseButton.LeftButton)
    assert "Removed Tiny Chat" in panel.status.text()
    assert "tiny-chat" not in {m.id for m in context.catalog.models}
    assert not user_catalog_path().exists()
    assert all(page.tree.index(r, 0).data(Role.MODEL).id != "tiny-chat" for r in range(page.tree.rowCount()))
    selected = page.selected()
    assert selected is not None and not page.remove_button.isVisibleTo(page)


def test_a_newer_search_drops_the_answer_of_an_older_one(qtbot: QtBot, context: AppContext, laptop: Hardware,
                                                         hub: HubServer) -> None:
    page = make_page(qtbot, context, laptop)
    panel = page.hub_panel
    hub.inject(Fault("stall", path="api/models", seconds=30))  # the first search hangs, then answers
    panel.query.setText("gguf")
    panel.start_search()
    qtbot.waitUntil(lambda: any(path == "/api/models" for _, path, _ in hub.requests), timeout=10_000)
    panel.query.setText("awq")  # Return pressed again while the first search still runs
    with qtbot.waitSignal(panel.worker.searched, timeout=10_000):
        panel.start_search()
    assert [r.repo for r in panel.results.results] == ["someone/Tiny-Chat-AWQ"]
    answers: list[list[object]] = []
    panel.worker.searched.connect(answers.append)
    stale = panel.worker._workers["search"]._finished  # every answer, the dropped ones too
    with qtbot.waitSignal(stale, timeout=10_000, check_params_cb=lambda ticket, result, error: ticket == 1) as late:
        hub.release.set()
    assert late.args[1][1][0].repo == "someone/Tiny-Chat-GGUF"  # the first search did answer, late...
    qtbot.wait(50)
    assert answers == []  # ...and its answer was dropped
    assert [r.repo for r in panel.results.results] == ["someone/Tiny-Chat-AWQ"]
    assert panel.status.text().startswith("1 models found")


def test_offline_search_says_so_in_one_line(qtbot: QtBot, context: AppContext, laptop: Hardware,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    page = make_page(qtbot, context, laptop)
    page.hub_panel.query.setText("mistral")
    with qtbot.waitSignal(page.hub_panel.worker.failed, timeout=10_000):
        page.hub_panel.start_search()
    assert "offline mode is on" in page.hub_panel.status.text()
    assert page.tree.rowCount() == len(context.catalog.models)  # the catalogue keeps working


def test_a_broken_user_catalogue_is_reported_not_fatal(qtbot: QtBot, qapp: object, hearth_home: Path,
                                                      laptop: Hardware) -> None:
    from app.ui.application import create_context

    user_catalog_path().parent.mkdir(parents=True, exist_ok=True)
    user_catalog_path().write_text("{not json")
    context = create_context(qapp)  # type: ignore[arg-type]
    page = make_page(qtbot, context, laptop)
    assert "is not valid JSON" in page.hub_panel.status.text()
    assert page.tree.rowCount() == 6
