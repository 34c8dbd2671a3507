"""RemoteTester: probe remote machines on a worker thread and answer with signals (the GUI never waits)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from PySide6.QtCore import QObject, Signal

from app.engine.rpc import RemoteMachine, RpcEndpoint, RpcError, probe


class RemoteTester(QObject):
    """Tests each endpoint in turn off the GUI thread.

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
        self._generation = 0

    def test(self, endpoints: Sequence[RpcEndpoint]) -> None:
        """Start probing; answers of an older request are dropped."""
        self._generation += 1
        threading.Thread(target=self._run, args=(tuple(endpoints), self._generation),
                         name="remote-test", daemon=True).start()

    def _run(self, endpoints: tuple[RpcEndpoint, ...], generation: int) -> None:
        for ep in endpoints:
            try:
                machine: RemoteMachine = probe(ep, self.timeout)
            except RpcError as exc:
                if generation == self._generation:
                    self.failed.emit(str(ep), str(exc))
                continue
            if generation == self._generation:
                self.tested.emit(str(ep), machine)
        if generation == self._generation:
            self.finished.emit()
