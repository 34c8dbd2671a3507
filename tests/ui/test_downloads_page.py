"""The Downloads page against the loopback Hub: catalogue requests, buttons, Hub browser, import."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from app.catalog.installed import InstallState, install_state
from app.hub.importer import imported_path
from app.hub.plan import DownloadRequest
from app.hub.queue import DownloadJob, JobState
from app.paths import variant_dir
from app.services import AppServices
from app.ui.context import AppContext
from app.ui.downloads.model import Role
from app.ui.downloads.page import DownloadsPage
from tests.hub.conftest import GPTQ_REPO, gguf_payload, running_hub, use_quick_transfers
from tests.hub.hub_server import Fault, HubServer

VARIANT_ID = "mistral-7b-openorca:gguf:Q4_K_M"
# The offscreen platform warns when a top-level widget is shown; the page is shown to lay out its rows.
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


@pytest.fixture(autouse=True)
def quick_transfers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from use_quick_transfers(monkeypatch)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, context: AppContext) -> Iterator[HubServer]:
    """The loopback Hub, also serving the catalogue's Mistral Q4_K_M file (small)."""
    for server in running_hub(monkeypatch):
        _, variant = context.catalog.variant(VARIANT_ID)
        server.add_repo(variant.repo, {"main": {variant.files[0]: gguf_payload(400_000, 21)}})
        yield server


@pytest.fixture
def page(qtbot: QtBot, context: AppContext) -> Iterator[DownloadsPage]:
    widget = DownloadsPage(context)
    qtbot.addWidget(widget)
    widget.resize(1100, 760)
    widget.show()
    yield widget
    widget.shutdown()


def click_action(qtbot: QtBot, page: DownloadsPage, job: DownloadJob, action: str) -> None:
    """Click the painted button of a row, where the delegate draws it."""
    index = page.model.index(page.model.row_of(job.id))
    rects = dict(page.delegate.button_rects(page.list.visualRect(index), index))
    assert action in rects, f"{action} not offered, only {list(rects)}"
    qtbot.mouseClick(page.list.viewport(), Qt.MouseButton.LeftButton, pos=rects[action].center())


def test_empty_state_says_what_to_do(page: DownloadsPage) -> None:
    assert page.empty_label.isVisible() and not page.list.isVisible()
    assert "Catalogue" in page.empty_label.text()


def test_catalogue_variant_downloads_and_offers_chat(qtbot: QtBot, page: DownloadsPage, context: AppContext,
                                                     hub: HubServer, qtmodeltester: ModelTester) -> None:
    with qtbot.waitSignal(context.events.installed_changed, timeout=15_000):
        context.events.download_requested.emit(VARIANT_ID)
        assert page.model.rowCount() == 1 and page.list.isVisible()
    qtmodeltester.check(page.model)
    job = page.model.job_at(0)
    assert job.state is JobState.DONE
    index = page.model.index(0)
    assert index.data(Role.FRACTION) == 1.0 and "verified" in index.data(Role.DETAIL)
    _, variant = context.catalog.variant(VARIANT_ID)
    assert install_state(context.dirs.models, variant) is InstallState.INSTALLED
    with qtbot.waitSignal(context.events.chat_requested) as blocker:
        click_action(qtbot, page, job, "chat")
    assert blocker.args == [str(variant_dir(context.dirs.models, variant.repo, "main") / variant.files[0])]
    click_action(qtbot, page, job, "remove")
    qtbot.waitUntil(lambda: page.model.rowCount() == 0)


def test_pause_resume_cancel_buttons(qtbot: QtBot, page: DownloadsPage, context: AppContext,
                                     hub: HubServer) -> None:
    hub.inject(Fault("bandwidth", path="*.gguf", rate=150_000, times=None))
    context.events.download_requested.emit(VARIANT_ID)
    job = page.model.job_at(0)
    qtbot.waitUntil(lambda: job.done_bytes > 50_000, timeout=10_000)
    qtbot.waitUntil(lambda: "left" in page.model.index(0).data(Role.DETAIL), timeout=5_000)
    click_action(qtbot, page, job, "pause")
    qtbot.waitUntil(lambda: "1 paused" in page.subtitle.text(), timeout=5_000)
    assert job.state is JobState.PAUSED and "Paused at" in page.model.index(0).data(Role.DETAIL)
    hub.faults.clear()
    with qtbot.waitSignal(context.events.installed_changed, timeout=10_000):
        click_action(qtbot, page, job, "resume")
    assert job.state is JobState.DONE

    hub.inject(Fault("bandwidth", path="*.safetensors", rate=100_000, times=None))
    job = page.enqueue(DownloadRequest(GPTQ_REPO, "main"))
    qtbot.waitUntil(lambda: job.state is JobState.RUNNING and job.done_bytes > 20_000, timeout=10_000)
    click_action(qtbot, page, job, "cancel")
    qtbot.waitUntil(lambda: job.state is JobState.CANCELLED, timeout=5_000)
    folder = variant_dir(context.dirs.models, GPTQ_REPO, "main")
    assert not any(p.name.endswith(".partial") for p in folder.iterdir())


def test_progress_is_coalesced(qtbot: QtBot, page: DownloadsPage, context: AppContext, hub: HubServer) -> None:
    hub.inject(Fault("bandwidth", path="*.gguf", rate=200_000, times=None))
    updates: list[int] = []
    page.model.dataChanged.connect(lambda *_: updates.append(1))
    context.events.download_requested.emit(VARIANT_ID)
    qtbot.wait(1600)
    job = page.model.job_at(0)
    assert job.state is JobState.RUNNING and job.done_bytes > 100_000
    assert len(updates) <= 6  # ~3 timer ticks and a couple of state changes, not one per chunk


def test_hub_browser_lists_branches_and_downloads_one(qtbot: QtBot, page: DownloadsPage, context: AppContext,
                                                      hub: HubServer) -> None:
    browser = page.browser
    browser.input.setText(f"{GPTQ_REPO}:gptq-4bit-32g-actorder_True")
    with qtbot.waitSignal(browser.lookup.listed, timeout=10_000):
        qtbot.mouseClick(browser.look_up_button, Qt.MouseButton.LeftButton)
    assert [browser.branch_box.itemText(i) for i in range(browser.branch_box.count())] == [
        "main", "gptq-4bit-32g-actorder_True"]
    assert browser.branch_box.currentText() == "gptq-4bit-32g-actorder_True"
    assert browser.files.rowCount() == 4 and browser.files.all_checked()  # a GPTQ branch: all of it
    assert browser.download_button.isEnabled() and "Download" in browser.download_button.text()
    with qtbot.waitSignal(context.events.installed_changed, timeout=10_000):
        qtbot.mouseClick(browser.download_button, Qt.MouseButton.LeftButton)
    folder = variant_dir(context.dirs.models, GPTQ_REPO, "gptq-4bit-32g-actorder_True")
    assert (folder / "quantize_config.json").read_bytes() == b'{"bits": 4, "group_size": 32}'
    assert not variant_dir(context.dirs.models, GPTQ_REPO, "main").exists()

    browser.branch_box.setCurrentIndex(0)
    with qtbot.waitSignal(browser.lookup.listed, timeout=10_000):
        browser.branch_box.activated.emit(0)
    assert browser.files.listing is not None and browser.files.listing.revision == "main"


def test_hub_browser_explains_a_bad_branch(qtbot: QtBot, page: DownloadsPage, hub: HubServer) -> None:
    page.browser.input.setText(f"{GPTQ_REPO}:gptq-9bit")
    with qtbot.waitSignal(page.browser.lookup.failed, timeout=10_000):
        page.browser.look_up()
    assert "was not found" in page.browser.status.text() and not page.browser.download_button.isEnabled()
    page.browser.input.setText("not a repo!")
    page.browser.look_up()
    assert "is not a Hugging Face repo" in page.browser.status.text()


def test_import_by_drop_and_a_wrong_file(qtbot: QtBot, page: DownloadsPage, context: AppContext,
                                         tmp_path: Path) -> None:
    model = tmp_path / "my-model.Q4_0.gguf"
    model.write_bytes(gguf_payload(50_000, 31))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(model))])
    drop = QDropEvent(QPointF(QPoint(20, 20)), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(context.events.installed_changed, timeout=10_000):
        page.dropEvent(drop)
    target = imported_path(context.dirs.models, model)
    assert target.read_bytes() == model.read_bytes()
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model")
    [job] = page.import_files([fake])
    qtbot.waitUntil(lambda: job.state is JobState.FAILED, timeout=5_000)
    assert "is not a GGUF model file" in page.model.index(page.model.row_of(job.id)).data(Role.DETAIL)


def test_shutdown_pauses_and_the_next_page_offers_resume(qtbot: QtBot, context: AppContext,
                                                         hub: HubServer) -> None:
    hub.inject(Fault("bandwidth", path="*.gguf", rate=100_000, times=None))
    first = DownloadsPage(context)
    qtbot.addWidget(first)
    context.events.download_requested.emit(VARIANT_ID)
    job = first.model.job_at(0)
    qtbot.waitUntil(lambda: job.done_bytes > 30_000, timeout=10_000)
    first.shutdown()
    assert job.state is JobState.PAUSED
    context.events.download_requested.disconnect(first.download_variant)
    context.services = AppServices.start(context.dirs)  # the next start of Hearth: services built anew
    second = DownloadsPage(context)
    qtbot.addWidget(second)
    assert second.model.rowCount() == 1
    restored = second.model.job_at(0)
    assert restored.state is JobState.PAUSED and "resume" in second.model.index(0).data(Role.ACTIONS)
    second.shutdown()
