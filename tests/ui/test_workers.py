"""The one off-thread primitive: work runs off the GUI thread, a superseded result is dropped."""

from __future__ import annotations

import threading

from pytestqt.qtbot import QtBot

from app.ui.workers import Lane, LatestWorker, Report, create_worker


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


def test_progress_arrives_in_order_on_the_gui_thread_and_superseded_progress_is_dropped(qtbot: QtBot) -> None:
    gui = threading.get_ident()
    release_first = threading.Event()
    progress: list[tuple[object, bool]] = []
    results: list[str] = []

    def first(report: Report) -> str:
        report("first: started")
        release_first.wait(10)
        report("first: late")  # after the second request: dropped
        return "first"

    def second(report: Report) -> str:
        for step in range(3):
            report(step)
        return "second"

    worker: LatestWorker[str] = LatestWorker(results.append, lane=Lane.WAITS,
                                             on_progress=lambda v: progress.append((v, threading.get_ident() == gui)))
    worker.submit_reporting(first)
    qtbot.waitUntil(lambda: bool(progress), timeout=5_000)
    worker.submit_reporting(second)
    qtbot.waitUntil(lambda: results == ["second"], timeout=5_000)
    release_first.set()
    qtbot.wait(200)
    assert progress == [("first: started", True), (0, True), (1, True), (2, True)]
    assert results == ["second"]


def test_waiting_work_never_holds_up_a_folder_scan(qtbot: QtBot) -> None:
    """Three requests stuck on the network (more than the file pool's threads) and a scan still runs."""
    release = threading.Event()
    names: list[str] = []

    def stuck() -> None:
        names.append(threading.current_thread().name)
        release.wait(10)

    try:
        for _ in range(3):
            create_worker(stuck, lambda _none: None, lane=Lane.WAITS)
        scanned: list[int] = []
        create_worker(lambda: 42, scanned.append)
        qtbot.waitUntil(lambda: scanned == [42] and len(names) == 3, timeout=5_000)
        assert all(n == "hearth-waits" for n in names)  # a thread each, none from the file pool
    finally:
        release.set()
