"""The adaptive thread count with a fake clock: stalls move it down, recovery moves it back, noise does not flap."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from app.engine.protocol import parse_threads
from app.engine.thread_start import CoreCount, performance_cores, start_point
from app.engine.thread_tuner import BATCH_CONFIG, ThreadControl, ThreadTuner
from app.errors import HearthError

# Seconds per token at each thread count on the simulated 4-core machine.
IDLE = {1: 0.030, 2: 0.017, 3: 0.012, 4: 0.010}
# Two other busy programs: the threads llama.cpp runs wait for each other at every step, so one
# descheduled thread stalls them all (the collapse the issue measured); fewer threads win.
BUSY = {1: 0.034, 2: 0.024, 3: 0.045, 4: 0.080}


class FakeMachine:
    """A wall clock and a process CPU clock that advance as simulated tokens are decoded."""

    def __init__(self, seed: int = 1) -> None:
        self.now = 100.0
        self.cpu = 0.0
        self.rng = random.Random(seed)

    def clock(self) -> float:
        return self.now

    def cpu_clock(self) -> float:
        return self.cpu

    def run(self, tuner: ThreadTuner, tokens: int, costs: dict[int, float], *, share: float = 1.0,
            noise: float = 0.0, spikes: float = 0.0, share_noise: float = 0.0) -> list[int]:
        """Decode ``tokens`` tokens; return the thread count used for each."""
        used = []
        tuner.start()
        for _ in range(tokens):
            n = tuner.threads
            used.append(n)
            cost = costs[n] * (1 + self.rng.uniform(-noise, noise))
            if spikes and self.rng.random() < spikes:
                cost *= 4  # the OS ran something else for a moment
            self.now += cost
            self.cpu += cost * n * share * (1 + self.rng.uniform(-share_noise, share_noise))
            tuner.tick(1)
        return used


def make(machine: FakeMachine, start: int = 4, top: int = 4) -> ThreadTuner:
    return ThreadTuner(start, top, clock=machine.clock, cpu_clock=machine.cpu_clock)


def test_stall_pattern_moves_it_down_and_recovery_moves_it_back_up() -> None:
    machine = FakeMachine()
    tuner = make(machine)
    idle = machine.run(tuner, 300, IDLE, noise=0.05)
    assert idle[-1] == 4 and tuner.current == 4
    busy = machine.run(tuner, 400, BUSY, share=0.5, noise=0.05, spikes=0.05)
    assert tuner.current == 2, tuner.reason
    assert tuner.restarts >= 1  # it noticed the change at once, not at its next scheduled probe
    assert busy[-200:].count(2) >= 160  # settled there, only brief probes of its neighbours
    assert "faster" in tuner.reason
    recovered = machine.run(tuner, 500, IDLE, share=1.0, noise=0.05)
    assert tuner.current == 4, tuner.reason
    assert recovered[-200:].count(4) >= 185


def test_it_reacts_within_a_few_windows() -> None:
    machine = FakeMachine()
    tuner = make(machine, start=2, top=2)
    machine.run(tuner, 200, {1: 0.013, 2: 0.008}, noise=0.03)
    assert tuner.current == 2
    used = machine.run(tuner, 120, {1: 0.020, 2: 0.060}, share=0.55, noise=0.05)
    # The collapse: 2 threads at a third of their speed. Down to 1 thread within 6 windows.
    first_one = used.index(1)
    assert first_one < 48 and tuner.current == 1 and used[-80:].count(1) >= 70


def test_noise_does_not_make_it_flap() -> None:
    machine = FakeMachine(seed=7)
    tuner = make(machine, start=3)
    flat = {n: 0.02 for n in IDLE}  # every count equally fast: nothing to win
    machine.run(tuner, 3000, flat, noise=0.25, spikes=0.08)
    assert tuner.switches <= 1
    machine2 = FakeMachine(seed=3)
    tuner2 = make(machine2)
    machine2.run(tuner2, 3000, IDLE, noise=0.2, spikes=0.08)
    assert tuner2.switches == 0 and tuner2.current == 4


def test_a_cpu_share_near_the_threshold_does_not_restart_the_search() -> None:
    machine = FakeMachine(seed=5)
    tuner = make(machine, start=2, top=2)
    used = machine.run(tuner, 3000, {1: 0.013, 2: 0.008}, share=0.82, share_noise=0.1, noise=0.05)
    assert tuner.switches == 0
    assert used.count(1) / len(used) < 0.03  # a few probes, backing off; not a search every window


def test_first_reply_on_an_idle_machine_pays_almost_nothing() -> None:
    machine = FakeMachine()
    tuner = make(machine, start=2, top=2)
    used = machine.run(tuner, 128, {1: 0.013, 2: 0.008}, noise=0.03)
    assert used.count(1) == 0 and tuner.current == 2


def test_idle_cost_is_under_two_percent() -> None:
    """Settled on an idle machine, probes of a slower count cost under 2% of the decode time."""
    machine = FakeMachine()
    tuner = make(machine, start=2, top=2)
    costs = {1: 0.013, 2: 0.008}
    machine.run(tuner, 400, costs, noise=0.03)  # the first replies of a session: it settles
    before = machine.now
    used = machine.run(tuner, 4000, costs, noise=0.03)
    spent = machine.now - before
    ideal = sum(costs[2] for _ in used)
    assert spent / ideal < 1.02 * 1.03  # the noise's own mean is 1.0; allow its spread
    assert used.count(1) / len(used) < 0.02


def test_single_thread_machine_never_probes() -> None:
    machine = FakeMachine()
    tuner = make(machine, start=1, top=1)
    assert set(machine.run(tuner, 500, {1: 0.01}, noise=0.3)) == {1}
    assert tuner.probes == 0


def test_batch_tuner_ignores_tiny_chunks_and_tunes_per_token() -> None:
    machine = FakeMachine()
    tuner = ThreadTuner(2, 2, kind="batch", config=BATCH_CONFIG, clock=machine.clock,
                        cpu_clock=machine.cpu_clock)
    for _ in range(5):  # tiny chunks (a reused chat prefix): not timed
        tuner.start()
        machine.now += 0.5
        assert tuner.tick(3) == 2
    assert tuner.probes == 0
    for _ in range(12):  # prompts of 200 tokens; 1 thread is faster per token under load
        tuner.start()
        n = tuner.threads
        machine.now += 200 * (0.004 if n == 1 else 0.009)
        machine.cpu += 200 * 0.004 * n * 0.5
        tuner.tick(200)
    assert tuner.current == 1


def test_control_applies_decode_and_batch_counts_separately() -> None:
    machine = FakeMachine()
    applied: list[tuple[int, int]] = []
    start = start_point(CoreCount(2, "2 physical cores"), 0.0)
    control = ThreadControl(start, None, lambda n, b: applied.append((n, b)),
                            clock=machine.clock, cpu_clock=machine.cpu_clock)
    assert control.counts == (2, 2)
    control.begin_decode()
    for _ in range(200):
        n = control.counts[0]
        cost = {1: 0.02, 2: 0.06}[n]
        machine.now += cost
        machine.cpu += cost * n * 0.5
        control.decoded()
    assert control.counts[0] == 1 and control.counts[1] == 2  # prompts untouched: no prompt was timed
    assert applied and all(b == 2 for _, b in applied)
    report = control.report()
    assert report.mode == "auto" and report.n_threads == 1 and report.n_threads_batch == 2
    assert "faster" in report.describe()


def test_fixed_count_never_changes() -> None:
    machine = FakeMachine()
    applied: list[tuple[int, int]] = []
    control = ThreadControl(start_point(CoreCount(2, "2 physical cores"), 0.0), 2,
                            lambda n, b: applied.append((n, b)), clock=machine.clock, cpu_clock=machine.cpu_clock)
    control.begin_decode()
    for _ in range(300):
        machine.now += 0.06
        control.decoded()
    assert control.counts == (2, 2) and applied == []
    assert control.report().describe() == "CPU: 2 threads (fixed in settings)"


@pytest.mark.parametrize(("cores", "busy", "expected"), [(2, 0.0, 2), (2, 0.3, 2), (2, 0.7, 1), (2, 2.0, 1),
                                                         (8, 2.1, 6), (1, 3.0, 1)])
def test_start_point_subtracts_busy_cores_never_below_one(cores: int, busy: float, expected: int) -> None:
    point = start_point(CoreCount(cores, f"{cores} physical cores"), busy)
    assert point.threads == expected
    assert point.cores == cores
    assert ("other programs using" in point.reason) == (busy >= 0.6)


def _cpu(root: Path, cpu: int, core: int, capacity: int | None = None) -> None:
    topology = root / f"cpu{cpu}" / "topology"
    topology.mkdir(parents=True)
    (topology / "core_id").write_text(f"{core}\n")
    (topology / "physical_package_id").write_text("0\n")
    if capacity is not None:
        (root / f"cpu{cpu}" / "cpu_capacity").write_text(f"{capacity}\n")


def test_performance_cores_on_an_intel_hybrid(tmp_path: Path) -> None:
    sysfs, devices = tmp_path / "cpu", tmp_path / "devices"
    # 2 P-cores with hyper-threads (cpus 0-3) and 4 E-cores (cpus 4-7).
    for cpu, core in enumerate([0, 0, 1, 1, 8, 9, 10, 11]):
        _cpu(sysfs, cpu, core)
    (devices / "cpu_core").mkdir(parents=True)
    (devices / "cpu_core" / "cpus").write_text("0-3\n")
    (devices / "cpu_atom").mkdir()
    (devices / "cpu_atom" / "cpus").write_text("4-7\n")
    assert performance_cores(sysfs, devices) == 2


def test_performance_cores_on_arm_big_little_and_none_when_uniform(tmp_path: Path) -> None:
    sysfs = tmp_path / "cpu"
    for cpu, capacity in enumerate([446, 446, 446, 446, 1024, 1024]):
        _cpu(sysfs, cpu, cpu, capacity)
    (sysfs / "online").write_text("0-5\n")
    assert performance_cores(sysfs, tmp_path / "none") == 2
    uniform = tmp_path / "uniform"
    for cpu in range(4):
        _cpu(uniform, cpu, cpu, 1024)
    (uniform / "online").write_text("0-3\n")
    assert performance_cores(uniform, tmp_path / "none") is None


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5", ""])
def test_bad_thread_settings_get_one_clear_line(text: str) -> None:
    with pytest.raises(HearthError, match="threads must be 'auto' or a whole number"):
        parse_threads(text)


def test_thread_settings_parse() -> None:
    assert parse_threads("auto") == "auto" and parse_threads(" AUTO ") == "auto"
    assert parse_threads("3") == 3




def test_usable_cores_respects_the_cpus_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import psutil

    from app.engine import thread_start

    monkeypatch.setattr(thread_start, "performance_cores", lambda: None)
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 8)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(16)), raising=False)
    assert thread_start.usable_cores() == CoreCount(8, "8 physical cores")
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0}, raising=False)
    assert thread_start.usable_cores() == CoreCount(1, "1 CPU this process may use")
