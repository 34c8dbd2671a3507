"""RemoteTester: probe remote machines off the GUI thread and answer with signals (the GUI never waits)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.engine.rpc import RpcEndpoint, RpcError, probe
from app.ui.workers import Lane, LatestWorker, Report


class RemoteTester(QObject):
    """Tests each endpoint in turn off the GUI thread; a newer test drops the answers of an older one.

    Signals:
        tested(str, object): an endpoint and its RemoteMachine (devices, free memory).
        failed(str, str): an endpoint and why it cannot be used (one line naming it).
        finished(): every endpoint of the latest request has answered.
    """

    tested = Signal(str, object)
    failed = Signal(str, str)
    finished = Signal()

    def __init__(self, parent: QObject | None = None, timeout: float = 5.0) -> None:
        super().__init__(parent)
        self.timeout = timeout
        self._worker: LatestWorker[None] = LatestWorker(lambda _none: self.finished.emit(), parent=self,
                                                        on_progress=self._answered, lane=Lane.WAITS)

    def test(self, endpoints: Sequence[RpcEndpoint]) -> None:
        """Start probing; answers of an older request are dropped."""
        endpoints = tuple(endpoints)
        timeout = self.timeout

        def run(report: Report) -> None:  # each machine's answer as soon as it comes
            for ep in endpoints:
                try:
                    report((self.tested, str(ep), probe(ep, timeout)))
                except RpcError as exc:
                    report((self.failed, str(ep), str(exc)))

        self._worker.submit_reporting(run)

    @staticmethod
    def _answered(answer: tuple[Any, ...]) -> None:
        signal, *args = answer
        signal.emit(*args)
