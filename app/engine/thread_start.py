"""Where the thread count starts: physical (performance) cores, minus what other programs use right now."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from app.engine.protocol import plural_threads

SYSFS_CPU = Path("/sys/devices/system/cpu")
# A core counts as taken by other programs once they keep it this busy.
TAKEN_AT = 0.6


@dataclass(frozen=True)
class CoreCount:
    """Cores llama.cpp should use on this machine, and how they were found."""

    cores: int
    how: str


@dataclass(frozen=True)
class StartPoint:
    """The first thread count and the facts behind it."""

    threads: int
    cores: int
    others_busy: float  # cores' worth of CPU time other programs used while the model loaded
    reason: str


def _cpu_list(text: str) -> list[int]:
    """Parse a sysfs CPU list such as ``0-3,8,10-11``."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _physical_cores_of(cpus: list[int], sysfs: Path) -> int:
    """Distinct (package, core) pairs among ``cpus``: hyper-threads of one core count once."""
    seen: set[tuple[str, str]] = set()
    for cpu in cpus:
        topology = sysfs / f"cpu{cpu}" / "topology"
        seen.add((_read(topology / "physical_package_id") or "0", _read(topology / "core_id") or str(cpu)))
    return len(seen)


def performance_cores(sysfs: Path = SYSFS_CPU, devices: Path = Path("/sys/devices")) -> int | None:
    """Physical performance cores on a hybrid CPU (Intel P/E cores, Arm big.LITTLE, Apple), else None."""
    if sys.platform == "darwin":
        return _darwin_performance_cores()
    core_list = _read(devices / "cpu_core" / "cpus")  # Intel hybrid: P-cores; E-cores are under cpu_atom
    if core_list and _read(devices / "cpu_atom" / "cpus"):
        return _physical_cores_of(_cpu_list(core_list), sysfs) or None
    online = _read(sysfs / "online")
    if not online:
        return None
    capacities: dict[int, int] = {}
    for cpu in _cpu_list(online):
        value = _read(sysfs / f"cpu{cpu}" / "cpu_capacity")  # Arm: big cores have the largest capacity
        if value is None or not value.isdigit():
            return None
        capacities[cpu] = int(value)
    if not capacities or len(set(capacities.values())) < 2:
        return None
    biggest = max(capacities.values())
    return _physical_cores_of([c for c, v in capacities.items() if v == biggest], sysfs) or None


def _darwin_performance_cores() -> int | None:
    try:
        out = subprocess.run(["sysctl", "-n", "hw.perflevel0.physicalcpu"], capture_output=True,
                             text=True, timeout=2, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return int(out) if out.isdigit() and int(out) > 0 else None


def usable_cores() -> CoreCount:
    """Performance cores on a hybrid CPU, else physical cores (llama.cpp is slower on hyper-threads),
    no more than the CPUs this process may run on (taskset, container limits)."""
    import psutil

    performance = performance_cores()
    if performance:
        found = CoreCount(performance, f"{performance} performance core{'s' * (performance > 1)}")
    elif physical := psutil.cpu_count(logical=False):
        found = CoreCount(physical, f"{physical} physical core{'s' * (physical > 1)}")
    else:
        logical = psutil.cpu_count() or os.cpu_count() or 1
        found = CoreCount(logical, f"{logical} core{'s' * (logical > 1)}")
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else found.cores
    if 0 < allowed < found.cores:
        return CoreCount(allowed, f"{allowed} CPU{'s' * (allowed > 1)} this process may use")
    return found


class LoadSample:
    """Other programs' CPU use over a window (e.g. while a model loads): all CPUs' busy time minus ours."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._process = psutil.Process()
        self._started = time.monotonic()
        self._busy = self._all_busy()
        self._own = self._own_cpu()

    def _all_busy(self) -> float:
        total = 0.0
        for times in self._psutil.cpu_times(percpu=True):
            total += sum(times) - times.idle - getattr(times, "iowait", 0.0) - getattr(times, "guest", 0.0) \
                - getattr(times, "guest_nice", 0.0)
        return total

    def _own_cpu(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def others_busy(self, min_window_s: float = 0.25) -> float:
        """Cores' worth of CPU other programs used since this sample began (waits to ``min_window_s``)."""
        elapsed = time.monotonic() - self._started
        if elapsed < min_window_s:
            time.sleep(min_window_s - elapsed)
            elapsed = time.monotonic() - self._started
        busy = self._all_busy() - self._busy
        own = self._own_cpu() - self._own
        return max(0.0, (busy - own) / elapsed)


def start_point(cores: CoreCount, others_busy: float) -> StartPoint:
    """Cores minus those other programs keep busy now, never below 1."""
    taken = int(others_busy + (1 - TAKEN_AT))
    threads = max(1, cores.cores - taken)
    if taken <= 0:
        reason = f"{cores.how}, other programs idle: {plural_threads(threads)}"
    else:
        reason = (f"{cores.how}, other programs using about {others_busy:.1f} of them: starting with "
                  f"{plural_threads(threads)}")
    return StartPoint(threads, cores.cores, round(others_busy, 2), reason)
