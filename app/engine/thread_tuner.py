"""Adaptive llama.cpp thread counts: time each token, probe one thread fewer or more now and then, keep the fastest."""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from app.engine.protocol import ThreadReport, ThreadSetting, fixed_threads
from app.engine.thread_start import LoadSample, StartPoint, plural_threads, start_point, usable_cores

Clock = Callable[[], float]


@dataclass(frozen=True)
class TunerConfig:
    """How one tuner measures and decides. Counts are in windows of ``window`` samples."""

    window: int = 8  # samples per measurement (decode: tokens; prompt: chunks)
    min_samples_tokens: int = 1  # a sample with fewer tokens is not timed (tiny prompt chunks)
    skip_after_change: int = 1  # samples dropped after a change (the thread pool settles)
    first_gap: int = 2  # windows before the first probe, and after any change
    max_gap: int = 128  # the longest wait between probes once settled (idle cost: one probe per gap)
    max_gap_below_top: int = 32  # while running fewer threads than cores, look upward this often
    margin: float = 0.1  # a probe must be this much faster per token to win...
    confirm: int = 2  # ...in this many windows in a row
    base_windows: int = 3  # windows at the current count before probing against it
    quiet_gap: int = 32  # at every core and getting all its CPU time, fewer threads rarely win: probe late
    change: float = 1.3  # a window this much slower or faster than the settled baseline means the machine changed
    contended_share: float = 0.75  # our threads got less than this share of their CPU time: someone competes...
    free_share: float = 0.9  # ...and above this, nobody does (in between: as before, so noise cannot flip it)


DECODE_CONFIG = TunerConfig()
BATCH_CONFIG = TunerConfig(window=1, min_samples_tokens=16, skip_after_change=0, first_gap=1, max_gap=16,
                           max_gap_below_top=8, margin=0.12, confirm=2, base_windows=2, change=1.4, quiet_gap=8)


class ThreadTuner:
    """One thread count (decode or prompt) tuned from per-token times, with a hill climb of one step.

    Call :meth:`start` before a run of work, then :meth:`tick` after each step with the number of
    tokens it processed; ``tick`` returns the count to use from now on. Probes run one window at a
    neighbouring count; a neighbour that is ``margin`` faster wins. Probes back off (doubling the
    gap) while the current count keeps winning, so on an idle machine the tuner costs about one
    probe window per ``max_gap`` windows; a change of timings (another program starts or stops)
    or of CPU share starts the search again.
    """

    def __init__(self, start: int, top: int, *, kind: str = "decode", config: TunerConfig = DECODE_CONFIG,
                 clock: Clock = time.perf_counter, cpu_clock: Clock = time.process_time) -> None:
        self.top = max(1, top)
        self.kind = kind
        self.config = config
        self.clock = clock
        self.cpu_clock = cpu_clock
        self.current = min(max(1, start), self.top)
        self.probing: int | None = None
        self.reason = ""
        self.switches = 0
        self.probes = 0
        self.restarts = 0  # searches started again because the timings or CPU share changed
        self._last: float | None = None
        self._last_cpu = 0.0
        self._skip = 0
        self._samples: list[float] = []
        self._wall = self._cpu = 0.0
        self._recent: deque[float] = deque(maxlen=4)
        self._baseline: float | None = None
        self._contended: bool | None = None
        self._shifted = 0
        self._gap = config.first_gap
        self._countdown = config.first_gap
        self._last_direction = 0
        self._lost: set[int] = set()
        self._probe_windows: list[float] = []
        self.costs: dict[int, float] = {}

    @property
    def threads(self) -> int:
        """The count to run the next step with."""
        return self.probing if self.probing is not None else self.current

    def start(self) -> None:
        """Begin timing (the time since the last tick, between replies, does not count)."""
        self._last = self.clock()
        self._last_cpu = self.cpu_clock()

    def tick(self, tokens: int = 1) -> int:
        """A step of ``tokens`` tokens just finished at :attr:`threads`; return the count for the next step."""
        now = self.clock()
        cpu = self.cpu_clock()
        last, self._last = self._last, now
        cpu_last, self._last_cpu = self._last_cpu, cpu
        if last is None or tokens < self.config.min_samples_tokens:
            return self.threads
        if self._skip > 0:
            self._skip -= 1
            return self.threads
        wall = now - last
        self._samples.append(wall / tokens)
        self._wall += wall
        self._cpu += cpu - cpu_last
        if len(self._samples) >= self.config.window:
            self._close_window()
        return self.threads

    # ---- decisions ---------------------------------------------------------------------

    def _close_window(self) -> None:
        per_token = statistics.median(self._samples)
        running = self.threads
        share = self._cpu / (self._wall * running) if self._wall > 0 else 1.0
        self._samples.clear()
        self._wall = self._cpu = 0.0
        if self.probing is not None:
            self._judge_probe(self.probing, per_token)
        else:
            if share < self.config.contended_share:
                contended = True
            elif share > self.config.free_share:
                contended = False
            else:
                contended = bool(self._contended)
            self._steady(per_token, contended)

    def _steady(self, per_token: float, contended: bool) -> None:
        self._recent.append(per_token)
        self.costs[self.current] = statistics.median(self._recent)
        if self._machine_changed(per_token, contended):
            self._restart()
            return
        if self._baseline is None and len(self._recent) >= 2:
            self._baseline = statistics.median(self._recent)
        self._countdown -= 1
        if self._countdown > 0 or len(self._recent) < self.config.base_windows:
            return
        if not contended and self.current >= self.top and self._gap < self.config.quiet_gap:
            self._gap = self._countdown = self.config.quiet_gap  # idle machine: the tuner costs ~nothing
            return
        down = self.current - 1 if self.current > 1 and self.current - 1 not in self._lost else None
        up = self.current + 1 if self.current < self.top and self.current + 1 not in self._lost else None
        target: int | None
        if down is not None and up is not None:
            # Contention points down; otherwise alternate, starting upward.
            target = down if contended or self._last_direction > 0 else up
        else:
            target = down if down is not None else up
        if target is None:  # both neighbours lost since the last change: wait longer, then try again
            self._lost.clear()
            self._back_off()
            return
        self._last_direction = target - self.current
        self.probing = target
        self.probes += 1
        self._skip = self.config.skip_after_change

    def _machine_changed(self, per_token: float, contended: bool) -> bool:
        """Two windows in a row off the baseline (or a flip of CPU share): another program came or went."""
        flipped = self._contended is not None and contended != self._contended
        self._contended = contended
        base = self._baseline
        off = base is not None and (per_token > base * self.config.change or per_token * self.config.change < base)
        self._shifted = self._shifted + 1 if (off or flipped) else 0
        return self._shifted >= 2

    def _restart(self) -> None:
        last_two = list(self._recent)[-2:]
        self._recent.clear()
        self._recent.extend(last_two)
        self._baseline = statistics.median(last_two)
        self.costs = {self.current: self._baseline}
        self._lost.clear()
        self._shifted = 0
        self._gap = self._countdown = 1
        self.restarts += 1  # the reason shown stays the last decision until a probe decides again

    def _judge_probe(self, probe: int, per_token: float) -> None:
        base = statistics.median(self._recent) if self._recent else per_token
        self._probe_windows.append(per_token)
        wins = per_token < base * (1 - self.config.margin)
        if wins and len(self._probe_windows) < self.config.confirm:
            return  # a win must repeat before it counts: one lucky window is noise
        windows = list(self._probe_windows)
        self._probe_windows.clear()
        self.probing = None
        per_token = statistics.median(windows)
        self.costs[probe] = per_token
        if wins:
            old = self.current
            self.current = probe
            self.switches += 1
            self._recent.clear()
            self._recent.extend(windows)
            self._baseline = None
            self._shifted = 0
            self._lost = {old}
            self._gap = self.config.first_gap
            self._countdown = 1  # keep climbing the same way at once
            faster = base / per_token - 1
            self.reason = (f"{plural_threads(probe)} measured {faster:.0%} faster per token than {old}"
                           + (" (other programs are using the CPU)" if self._contended and probe < old else ""))
        else:
            self._skip = self.config.skip_after_change
            self._lost.add(probe)
            if self._settled():
                self._back_off()
            else:
                self._countdown = 1
            if not self.reason:
                self.reason = f"{plural_threads(self.current)} measured fastest"

    def _settled(self) -> bool:
        neighbours = {n for n in (self.current - 1, self.current + 1) if 1 <= n <= self.top}
        return neighbours <= self._lost

    def _back_off(self) -> None:
        # Below the core count on a quiet machine, look upward more often; while others compete, a
        # change of CPU share (they stopped) restarts the search anyway.
        quiet_below_top = self.current < self.top and not self._contended
        limit = self.config.max_gap_below_top if quiet_below_top else self.config.max_gap
        self._gap = min(self._gap * 2, limit)
        self._countdown = self._gap
        self._lost.clear()


class ThreadControl:
    """The worker's two thread counts: decode and prompt (batch), each fixed or tuned; applies changes.

    ``apply(n_threads, n_threads_batch)`` is called (between decode calls) whenever a count changes.
    """

    def __init__(self, start: StartPoint, fixed: int | None, apply: Callable[[int, int], object] | None = None,
                 *, clock: Clock = time.perf_counter, cpu_clock: Clock = time.process_time) -> None:
        self.start_point = start
        self.fixed = fixed
        self.apply = apply
        top = max(start.cores, start.threads)
        first = fixed or start.threads
        self.decode = ThreadTuner(first, top, kind="decode", clock=clock, cpu_clock=cpu_clock)
        self.batch = ThreadTuner(first, top, kind="batch", config=BATCH_CONFIG, clock=clock, cpu_clock=cpu_clock)
        self._applied = (first, first)

    @property
    def auto(self) -> bool:
        return self.fixed is None

    @property
    def counts(self) -> tuple[int, int]:
        return self._applied

    def begin_decode(self) -> None:
        if self.auto:
            self.decode.start()

    def decoded(self, tokens: int = 1) -> None:
        """After one decode call of ``tokens`` tokens (hot path: a few microseconds)."""
        if self.auto and self.decode.tick(tokens) != self._applied[0]:
            self._set()

    def begin_prompt(self) -> None:
        if self.auto:
            self.batch.start()

    def evaluated(self, tokens: int) -> None:
        if self.auto and self.batch.tick(tokens) != self._applied[1]:
            self._set()

    def _set(self) -> None:
        counts = (self.decode.threads, self.batch.threads)
        if counts != self._applied:
            self._applied = counts
            if self.apply is not None:
                self.apply(*counts)

    def report(self) -> ThreadReport:
        n, n_batch = self.decode.current, self.batch.current
        if self.fixed is not None:
            return ThreadReport("fixed", n, n_batch, self.fixed, self.start_point.cores,
                                f"set to {plural_threads(self.fixed)}")
        reason = self.start_point.reason
        if self.decode.reason:
            reason = f"{reason}; then {self.decode.reason}"
        return ThreadReport("auto", n, n_batch, self.start_point.threads, self.start_point.cores, reason)


def thread_control(setting: ThreadSetting, sample: LoadSample | None, *, clock: Clock = time.perf_counter,
                   cpu_clock: Clock = time.process_time) -> ThreadControl:
    """The control for a load: ``setting`` "auto"/None tunes from the start point that ``sample`` measured."""
    cores = usable_cores()
    fixed = fixed_threads(setting)
    if fixed is not None:
        start = StartPoint(fixed, cores.cores, 0.0, f"set to {plural_threads(fixed)}")
    else:
        start = start_point(cores, sample.others_busy() if sample is not None else 0.0)
    return ThreadControl(start, fixed, clock=clock, cpu_clock=cpu_clock)
