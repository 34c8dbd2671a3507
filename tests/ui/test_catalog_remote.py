"""The Catalogue's verdicts count the saved remote machines: real `hearth rpc-server`s on loopback, asked off the
GUI thread each time the page is shown; a machine that does not answer is named and left out."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from app.catalog.fit import Fit, memory_needed
from app.catalog.hardware import GB, Hardware
from app.engine.rpc import RemoteSettings, RemoteSurvey, parse_endpoints, save_remote_settings, survey
from app.ui.catalog import page as catalog_page
from app.ui.catalog.page import CatalogPage
from app.ui.catalog.table_model import Column
from app.ui.context import AppContext
from tests.engine.rpc_servers import free_port, start_rpc_server

VARIANT = "mistral-7b-openorca:gguf:Q4_K_M"


def smaller_than(context: AppContext, variant_id: str) -> Hardware:
    """A machine with 90% of the memory the variant needs: too big here, fits with any remote machine's help."""
    need = memory_needed(context.catalog.variant(variant_id)[1])
    return Hardware(ram_total=need * 9 // 10, ram_available=need * 9 // 10)


def shown_page(qtbot: QtBot, context: AppContext) -> CatalogPage:
    page = CatalogPage(context)
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: page.source.hardware is not None, timeout=10_000)  # this machine, detected first
    page.set_hardware(smaller_than(context, VARIANT))
    assert page.select_variant(VARIANT)
    assert page.source.row_info(VARIANT).fit.fit is Fit.NO  # type: ignore[union-attr]
    return page


def test_a_model_too_big_here_fits_over_the_saved_machines(qtbot: QtBot, context: AppContext,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    asked_on: list[int] = []

    def recorded(*args: Any) -> RemoteSurvey:  # the real survey, noting the thread it runs on
        asked_on.append(threading.get_ident())
        return survey(*args)

    monkeypatch.setattr(catalog_page, "survey", recorded)
    first, second = start_rpc_server(), start_rpc_server()
    closed = free_port()
    try:
        save_remote_settings(context.dirs.settings_file, RemoteSettings(
            parse_endpoints([first.endpoint, second.endpoint, f"127.0.0.1:{closed}"])))
        page = shown_page(qtbot, context)
        started = time.perf_counter()
        page.show()  # showing the page asks the machines
        assert time.perf_counter() - started < 0.5 and page.remote is None  # the GUI did not wait for them
        qtbot.waitUntil(lambda: page.remote is not None, timeout=20_000)
        assert asked_on and threading.get_ident() not in asked_on
        answers = page.remote
        assert answers is not None
        assert answers.names == (first.endpoint, second.endpoint)
        assert all(m.free_bytes > 0 for m in answers.machines)  # what each rpc-server reported: its free memory
        fit = page.source.row_info(VARIANT).fit
        assert fit is not None and fit.fit is Fit.REMOTE
        free = f"{answers.free_bytes / GB:.1f} GB free there"
        assert fit.reason.endswith(f"fits split across it and 2 remote machines: {free} ({first.endpoint}, "
                                   f"{second.endpoint})")
        row = page.source.row_of(VARIANT)
        assert page.source.index(row, Column.FIT).data() == "remote"
        details = page.details.toPlainText()
        assert "fits with your remote machines" in details and "2 remote machines" in details
        assert f"{first.endpoint}: {answers.machines[0].free_bytes / 1e9:.1f} GB free, counted" in details
        assert f"127.0.0.1:{closed} not counted: nothing is listening there" in details
        page.fits_box.setChecked(True)  # runs here, with the remote machines' help
        assert page.tree.index_of_variant(VARIANT).isValid()
        page.fits_box.setChecked(False)

        # Both machines go away: the next look shows this machine's own verdict and names them.
        first.stop()
        second.stop()
        page.hide()
        page.show()
        qtbot.waitUntil(lambda: page.remote is not None and not page.remote.machines, timeout=20_000)
        fit = page.source.row_info(VARIANT).fit
        assert fit is not None and fit.fit is Fit.NO and "remote" not in fit.reason
        details = page.details.toPlainText()
        assert "too big" in details and "none answered, so the verdict is this machine's alone" in details
        for endpoint in (first.endpoint, second.endpoint):
            assert f"{endpoint} not counted: nothing is listening there" in details
    finally:
        first.stop()
        second.stop()


def test_without_saved_machines_the_verdict_is_this_machines(qtbot: QtBot, context: AppContext) -> None:
    page = shown_page(qtbot, context)
    page.show()
    qtbot.waitUntil(lambda: page.remote is not None, timeout=10_000)
    assert page.source.row_info(VARIANT).fit.fit is Fit.NO  # type: ignore[union-attr]
    assert "Remote machines" not in page.details.toPlainText()
