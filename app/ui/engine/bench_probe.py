"""Hearth's whole path measured where users feel it: tokens arriving as Qt signals in an event loop."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psutil
from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEventLoop, QObject, QTimer

from app.engine.chat_format import ChatFormat
from app.engine.protocol import LoadSettings, ModelInfo, SamplingSettings
from app.ui.engine.engine_link import EngineLink


class EngineTimeout(RuntimeError):
    pass


@dataclass
class StreamRun:
    """One reply as the GUI saw it."""

    text: str = ""
    ttft_s: float = 0.0  # from Send: rendering the prompt (when the caller timed it) to the first words
    render_s: float = 0.0  # of which: rendering the chat into the prompt
    decode_tps: float = 0.0
    tokens: int = 0
    max_stall_ms: float = 0.0
    stats: Any = None
    error: str | None = None
    first_at: float = 0.0
    first_count: int = 0
    chunks: list[str] = field(default_factory=list)


class StallMeter(QObject):
    """A QTimer ticking every ``interval_ms``: the longest late tick is the GUI's longest stall."""

    def __init__(self, interval_ms: int = 4) -> None:
        super().__init__()
        self.interval_ms = interval_ms
        self.worst_ms = 0.0
        self._clock = QElapsedTimer()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.worst_ms = 0.0
        self._clock.start()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        elapsed = self._clock.nsecsElapsed() / 1e6
        self._clock.restart()
        self.worst_ms = max(self.worst_ms, elapsed - self.interval_ms)


class BenchDriver:
    """Drive the window's EngineLink synchronously from a script by running a local event loop."""

    def __init__(self) -> None:
        self.app = QCoreApplication.instance() or QCoreApplication([])
        self.adapter = EngineLink()
        self.meter = StallMeter()

    def _wait(self, signals: list[Any], timeout_s: float) -> tuple[str, Any]:
        loop = QEventLoop()
        outcome: list[tuple[str, Any]] = []
        connections = []
        for name, signal in signals:
            def slot(*args: Any, name: str = name) -> None:
                outcome.append((name, args[-1] if args else None))  # the payload (after a request id)
                loop.quit()
            connections.append((signal, slot))
            signal.connect(slot)
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        loop.exec()
        for signal, slot in connections:
            signal.disconnect(slot)
        if not outcome:
            raise EngineTimeout(f"no answer from the engine within {timeout_s:.0f} s")
        return outcome[0]

    def load(self, settings: LoadSettings, timeout_s: float = 120) -> ModelInfo:
        a = self.adapter
        self.adapter.load_settings(settings)
        name, value = self._wait([("loaded", a.loaded), ("failed", a.load_failed)], timeout_s)
        if name != "loaded":
            raise RuntimeError(value)
        info: ModelInfo = value
        return info

    def reply(self, prompt: str, stop: tuple[str, ...], sampling: SamplingSettings,
              chat_id: str = "bench", timeout_s: float = 300, measure_stalls: bool = False) -> StreamRun:
        """One reply through the adapter; ``measure_stalls`` runs the stall meter meanwhile."""
        a = self.adapter
        run = StreamRun()
        started = time.perf_counter()

        def on_tokens(_request: int, text: str) -> None:
            now = time.perf_counter()
            if not run.chunks:
                run.first_at = now
                run.ttft_s = now - started
                run.first_count = a.delivered_tokens
            run.chunks.append(text)

        a.tokens.connect(on_tokens)
        if measure_stalls:
            self.meter.start()
        try:
            a.generate(prompt, stop, sampling, chat_id)
            name, value = self._wait(
                [("finished", a.done), ("failed", a.failed)], timeout_s)
        finally:
            self.meter.stop()
            a.tokens.disconnect(on_tokens)
        ended = time.perf_counter()
        run.max_stall_ms = self.meter.worst_ms
        run.text = "".join(run.chunks)
        run.tokens = a.delivered_tokens
        if name != "finished":
            run.error = str(value)
            return run
        run.stats = value
        if run.first_at and ended > run.first_at:
            run.decode_tps = (run.tokens - run.first_count) / (ended - run.first_at)
        return run

    def worker_rss_mb(self) -> float:
        pid: int | None = getattr(self.adapter.controller.engine, "pid", None)  # a local worker has one
        return psutil.Process(pid).memory_info().rss / 2**20 if pid else 0.0

    def close(self) -> None:
        self.adapter.shutdown()


def scripted_chat(driver: BenchDriver, chat: ChatFormat, turns: int, reply_tokens: int,
                  chat_id: str = "bench-chat") -> list[StreamRun]:
    """A chat of ``turns`` user turns; each prompt is the whole rendered history."""
    from app.engine.benchmark import chat_history

    replies: list[str] = []
    runs = []
    sampling = SamplingSettings(temperature=0, repeat_penalty=1.0, max_tokens=reply_tokens)
    for turn in range(1, turns + 1):
        sent = time.perf_counter()  # the user's wait starts here, before the prompt exists
        prompt = chat.render(chat_history(turn, replies))
        rendered = time.perf_counter() - sent
        run = driver.reply(prompt, chat.stop, sampling, chat_id=chat_id)
        if run.error:
            raise RuntimeError(run.error)
        run.render_s = rendered
        run.ttft_s += rendered
        replies.append(run.text.strip() or "I see.")
        runs.append(run)
    return runs
