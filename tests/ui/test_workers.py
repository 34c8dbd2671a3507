"""The one off-thread primitive: work runs off the GUI thread, a superseded result is dropped."""

from __future__ import annotations

import threading

from pytestqt.qtbot import QtBot

from app.ui.workers import LatestWorker, create_worker


def test_only_the_newest_result_arrives_on_the_gui_thread(qtbot: QtBot) -> None:
    gui = threading.get_ident()
    release_first = threading.Event()
    results: list[tuple[str, bool]] = []
    threads: list[int] = []

    def slow() -> str:
        threads.append(threading.get_ident())
        release_first.wait(10)
        return "first"

    def quick() -> str:
        threads.append(threading.get_ident())
        return "second"

    worker: LatestWorker[str] = LatestWorker(lambda value: results.append((value, threading.get_ident() == gui)))
    worker.submit(slow)
    worker.submit(quick)
    qtbot.waitUntil(lambda: results == [("second", True)], timeout=5_000)
    release_first.set()
    qtbot.wait(200)
    assert results == [("second", True)], "the superseded request's result is dropped"
    assert gui not in threads and not worker.busy


def test_an_error_reaches_on_error_and_a_cancelled_result_nothing(qtbot: QtBot) -> None:
    errors: list[Exception] = []
    results: list[int] = []

    def fail() -> int:
        raise OSError("disk gone")

    create_worker(fail, results.append, errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=5_000)
    assert str(errors[0]) == "disk gone" and results == []
    worker: LatestWorker[int] = LatestWorker(results.append)
    worker.submit(lambda: 7)
    worker.cancel()
    qtbot.wait(200)
    assert results == []
