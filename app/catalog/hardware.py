"""What this machine has: RAM, and the GPUs this llama.cpp build can use, for "fits my machine" estimates."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from functools import lru_cache

import psutil

from app.catalog.devices import NO_GPU_FOUND, DeviceReport, detect_devices

GB = 1_000_000_000


@dataclass(frozen=True)
class Gpu:
    """One GPU as far as fitting models is concerned."""

    name: str
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class Hardware:
    """RAM and GPUs of this machine (or of a described one, for planning and tests)."""

    ram_total: int
    ram_available: int
    gpus: tuple[Gpu, ...] = ()
    unified_memory: bool = False
    # Why no VRAM counts (devices.NO_BUILD_SUPPORT, NO_GPU_FOUND, ...); GPUs seen that the build cannot use.
    gpu_note: str = ""
    unusable: tuple[str, ...] = ()

    @property
    def no_gpu_reason(self) -> str:
        """Why no VRAM counts: this build has no GPU support, or no GPU was found (and what NVML saw)."""
        found = f"; found {', '.join(self.unusable)}" if self.unusable else ""
        return (self.gpu_note or NO_GPU_FOUND) + found

    @property
    def vram_total(self) -> int:
        return sum(g.total_bytes for g in self.gpus)

    @property
    def vram_free(self) -> int:
        return sum(g.free_bytes for g in self.gpus)

    def summary(self) -> str:
        text = f"{self.ram_total / GB:.1f} GB RAM"
        if not self.gpus:
            return text + f" · no VRAM counted: {self.no_gpu_reason}"
        if self.unified_memory:
            return text + f" (shared with the GPU: {', '.join(g.name for g in self.gpus)})"
        names = ", ".join(g.name for g in self.gpus)
        return text + f" · {self.vram_total / GB:.1f} GB VRAM ({names})"


_SIZE = re.compile(r"^\s*([0-9.]+)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_size(text: str) -> int:
    """Parse ``16GB``, ``8g``, ``512M`` or a plain byte count."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (write e.g. 16GB)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def describe(spec: str) -> Hardware:
    """Hardware from a description such as ``ram=16GB,vram=8GB`` (planning for another machine)."""
    fields = dict(part.split("=", 1) for part in spec.split(",") if "=" in part)
    unknown = set(fields) - {"ram", "vram"}
    if unknown or "ram" not in fields:
        raise ValueError(f"describe hardware as ram=SIZE[,vram=SIZE], not {spec!r}")
    ram = parse_size(fields["ram"])
    gpus: tuple[Gpu, ...] = ()
    if "vram" in fields and parse_size(fields["vram"]) > 0:
        vram = parse_size(fields["vram"])
        gpus = (Gpu("described GPU", vram, vram),)
    return Hardware(ram_total=ram, ram_available=ram, gpus=gpus)


def hardware_from(report: DeviceReport, ram_total: int, ram_available: int, apple_silicon: bool = False) -> Hardware:
    """The machine as the catalogue judges it: GPUs only where this llama.cpp build can use them."""
    gpus = tuple(Gpu(d.description or d.name, d.total_bytes, d.free_bytes) for d in report.devices)
    # Apple silicon (Metal) and integrated GPUs use the same memory as the CPU.
    unified = bool(gpus) and (apple_silicon or all(d.integrated for d in report.devices))
    return Hardware(ram_total, ram_available, gpus, unified, report.reason, report.unusable)


@lru_cache(maxsize=1)
def detect_hardware() -> Hardware:
    """This machine, or the one HEARTH_HARDWARE describes (``ram=16GB,vram=8GB``). Slow once: off the GUI thread."""
    spec = os.environ.get("HEARTH_HARDWARE")
    if spec:
        return describe(spec)
    memory = psutil.virtual_memory()
    apple = sys.platform == "darwin" and os.uname().machine == "arm64"
    return hardware_from(detect_devices(), memory.total, memory.available, apple)
