"""Catalogue "Download and convert for llama.cpp" through the Downloads page against the loopback Hub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from app.catalog.hardware import Hardware
from app.convert.jobs import ConversionJob, ConversionState
from app.hub.queue import JobState
from app.ui.catalog.page import CatalogPage
from app.ui.catalog.table_model import Column
from app.ui.chat.model_bar import installed_models
from app.ui.context import AppContext
from app.ui.convert.panel import ConversionPanel
from app.ui.downloads.model import Role
from app.ui.downloads.page import DownloadsPage
from tests.convert.tiny_gptq import GptqConfig, build_checkpoint, train_tokenizer
from tests.hub.conftest import running_hub, use_quick_transfers
from tests.hub.hub_server import Fault, HubServer

VARIANT_ID = "mistral-7b-openorca:gptq:gptq-4bit-32g-actorder_True"
BROKEN_ID = "mistral-7b-openorca:gptq:main"
SHARD = "model.safetensors"
# The offscreen platform warns when a top-level widget is shown; the pages are shown to lay out their rows.
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


@pytest.fixture(autouse=True)
def quick_transfers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from use_quick_transfers(monkeypatch)


@pytest.fixture(scope="module")
def tiny_branch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes | Path]:
    folder = build_checkpoint(tmp_path_factory.mktemp("gptq") / "branch", train_tokenizer(),
                              GptqConfig(4, 32, True, False, "gptq")).folder
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, context: AppContext, tiny_branch: dict[str, bytes | Path]
        ) -> Iterator[HubServer]:
    """The catalogue's Mistral GPTQ repo on the loopback Hub: a tiny 4-bit branch, and a "main" that is not GPTQ."""
    _, variant = context.catalog.variant(VARIANT_ID)
    config = json.loads(tiny_branch["config.json"])  # type: ignore[arg-type]
    del config["quantization_config"]
    broken = {**tiny_branch, "config.json": json.dumps(config).encode()}
    for server in running_hub(monkeypatch):
        server.add_repo(variant.repo, {"main": broken, variant.revision: tiny_branch})
        yield server


@pytest.fixture
def pages(qtbot: QtBot, context: AppContext, laptop: Hardware) -> Iterator[tuple[CatalogPage, DownloadsPage]]:
    catalog, downloads = CatalogPage(context), DownloadsPage(context)
    for page in (catalog, downloads):
        qtbot.addWidget(page)
        page.resize(1100, 760)
        page.show()
    catalog.set_hardware(laptop)
    yield catalog, downloads
    downloads.shutdown()


def conversion_row(panel: ConversionPanel) -> tuple[ConversionJob, str]:
    index = panel.model.index(0)
    return index.data(Role.JOB), index.data(Role.DETAIL)


def click_row_button(qtbot: QtBot, panel: ConversionPanel, action: str) -> None:
    index = panel.model.index(0)
    rects = dict(panel.delegate.button_rects(panel.list.visualRect(index), index))
    assert action in rects, f"{action} not offered, only {list(rects)}"
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rects[action].center())


def test_download_and_convert_then_chat(qtbot: QtBot, context: AppContext, hub: HubServer,
                                        pages: tuple[CatalogPage, DownloadsPage], qtmodeltester: ModelTester) -> None:
    catalog, downloads = pages
    assert catalog.select_variant(VARIANT_ID)
    assert catalog.convert_button.isVisible() and catalog.convert_button.isEnabled()
    assert not catalog.chat_button.isVisible()
    assert "Hearth can convert this branch into a GGUF" in catalog.details.toPlainText()
    assert not downloads.conversions.isVisibleTo(downloads)

    stages: set[str] = set()
    downloads.conversions.model.dataChanged.connect(
        lambda *_: stages.add(str(conversion_row(downloads.conversions)[0].state.value)))
    with qtbot.waitSignal(context.events.navigate) as navigated:
        qtbot.mouseClick(catalog.convert_button, Qt.MouseButton.LeftButton)
    assert navigated.args == ["downloads"]
    assert downloads.conversions.isVisibleTo(downloads) and downloads.model.rowCount() == 1
    with qtbot.waitSignal(downloads.conversions.model.finished, timeout=60_000):
        pass
    qtmodeltester.check(downloads.conversions.model)
    job, detail = conversion_row(downloads.conversions)
    assert job.state is ConversionState.DONE and downloads.model.job_at(0).state is JobState.DONE
    assert {"converting", "requantizing", "converted"} <= stages
    # A permuted act-order branch: requantised to the 4-bit type measured closest to the exact F16 model.
    assert job.result is not None and job.result.quality is not None
    kind = job.result.type_label
    assert kind in ("Q4_K_M", "Q4_K_S", "IQ4_NL")
    assert detail.startswith(f"Converted for llama.cpp · {kind}")
    assert f"requantised to {kind} (from act-order groups) · KL " in detail and "top-1" in detail

    # The catalogue heard installed_changed: the row says converted and offers the chat.
    row = catalog.source.row_of(VARIANT_ID)
    assert catalog.source.index(row, Column.STATUS).data() == f"Converted ({kind})"
    assert catalog.chat_button.isVisible() and catalog.chat_button.isEnabled()
    assert not catalog.convert_button.isEnabled() and catalog.convert_button.text() == "Converted for llama.cpp"
    assert "Converted for llama.cpp on this machine" in catalog.details.toPlainText()
    assert f"Requantised to {kind} (from act-order groups): against the exact F16 model, mean KL divergence" \
        in catalog.details.toPlainText()
    assert "Chosen by measurement:" in catalog.details.toPlainText()
    assert job.result is not None and job.result.path.is_file()
    with qtbot.waitSignal(context.events.chat_requested) as chat:
        qtbot.mouseClick(catalog.chat_button, Qt.MouseButton.LeftButton)
    assert chat.args == [str(job.result.path)]
    with qtbot.waitSignal(context.events.chat_requested) as chat_from_row:
        click_row_button(qtbot, downloads.conversions, "chat")
    assert chat_from_row.args == [str(job.result.path)]

    listed = [m for m in installed_models(context.catalog, context.dirs.models) if m.path == job.result.path]
    assert [(m.name, m.detail) for m in listed] == [
        ("Mistral 7B OpenOrca", f"{kind} · converted from GPTQ gptq-4bit-32g-actorder_True")]


def test_cancel_while_downloading_leaves_nothing(qtbot: QtBot, context: AppContext, hub: HubServer,
                                                 pages: tuple[CatalogPage, DownloadsPage]) -> None:
    _, downloads = pages
    hub.inject(Fault("stall", path=SHARD, after=64_000, seconds=30))
    context.events.convert_requested.emit(VARIANT_ID)
    panel = downloads.conversions
    qtbot.waitUntil(lambda: "Step 1 of 2: downloading" in conversion_row(panel)[1], timeout=10_000)
    click_row_button(qtbot, panel, "cancel")
    qtbot.waitUntil(lambda: conversion_row(panel)[0].state is ConversionState.CANCELLED, timeout=10_000)
    qtbot.waitUntil(lambda: downloads.model.job_at(0).state is JobState.CANCELLED, timeout=10_000)
    assert "no converted file" in conversion_row(panel)[1]
    assert not list(context.dirs.models.rglob("*.gguf")) and not list(context.dirs.models.rglob("*.partial"))


def test_a_branch_that_is_not_gptq_fails_with_the_reason(qtbot: QtBot, context: AppContext, hub: HubServer,
                                                         pages: tuple[CatalogPage, DownloadsPage]) -> None:
    catalog, downloads = pages
    messages: list[str] = []
    context.events.status_message.connect(messages.append)
    catalog.select_variant(BROKEN_ID)
    with qtbot.waitSignal(downloads.conversions.model.failed, timeout=30_000):
        qtbot.mouseClick(catalog.convert_button, Qt.MouseButton.LeftButton)
    job, detail = conversion_row(downloads.conversions)
    assert detail.startswith("Conversion failed: ") and "is not a GPTQ branch" in detail
    assert any(m.startswith("Could not convert Mistral 7B OpenOrca") and "not a GPTQ branch" in m for m in messages)
    assert catalog.source.index(catalog.source.row_of(BROKEN_ID), Column.STATUS).data() == "Installed"
    assert not catalog.chat_button.isVisible() and catalog.convert_button.isEnabled()
    assert not list(context.dirs.models.rglob("*.gguf"))
    assert job.state is ConversionState.FAILED


@pytest.mark.slow
def test_an_exact_three_bit_card_offers_the_smaller_measured_file(qtbot: QtBot, context: AppContext,
                                                                 pages: tuple[CatalogPage, DownloadsPage],
                                                                 tmp_path: Path) -> None:
    from app.convert.sources import ConvertSource

    _, downloads = pages
    panel = downloads.conversions
    folder = build_checkpoint(tmp_path / "branch3", train_tokenizer(), GptqConfig(3, 128, False, True, "gptq")).folder
    with qtbot.waitSignal(panel.model.finished, timeout=120_000):
        panel.queue.convert(ConvertSource(folder))
    job, detail = conversion_row(panel)
    assert job.result is not None and job.result.out_type == "q4_0"
    assert "exact GPTQ weights · KL " in detail
    assert panel.model.index(0).data(Role.ACTIONS)[-1] == "smaller"
    tooltip = panel.model.index(0).data(Qt.ItemDataRole.ToolTipRole)
    assert "Smaller file: Q3_K_M requantised" in tooltip and "against the F16 model" in tooltip

    with qtbot.waitSignal(panel.model.finished, timeout=120_000) as finished:
        click_row_button(qtbot, panel, "smaller")
    smaller: ConversionJob = finished.args[0]
    assert smaller is not job and smaller.result is not None
    assert smaller.result.out_type == "q3_k_m" and smaller.result.mode == "requantised to Q3_K_M (as asked)"
    assert smaller.result.size < job.result.size and smaller.result.quality is not None
