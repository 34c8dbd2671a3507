"""The Qt binding itself: PySide6 6.12.0 on Python 3.11 loses a reference to True on every
Signal.emit() and aborts the app after a few hundred signals, so pyproject.toml keeps it below 6.12."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication


class Emitter(QObject):
    fired = Signal(int)


def test_signals_do_not_leak_references_to_true(qapp: QApplication) -> None:
    emitter = Emitter()
    received: list[int] = []
    emitter.fired.connect(received.append)
    before = sys.getrefcount(True)
    for value in range(2000):
        emitter.fired.emit(value)
    assert len(received) == 2000
    # A broken binding drops one reference per emit; allow a little noise from the interpreter.
    assert sys.getrefcount(True) >= before - 10
