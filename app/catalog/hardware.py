"""What this machine has: RAM and GPUs with their memory, for "fits my machine" estimates."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache

import psutil

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

    @property
    def vram_total(self) -> int:
        return sum(g.total_bytes for g in self.gpus)

    @property
    def vram_free(self) -> int:
        return sum(g.free_bytes for g in self.gpus)

    def summary(self) -> str:
        text = f"{self.ram_total / GB:.1f} GB RAM"
        if self.unified_memory:
            return text + " (shared with the GPU)"
        if self.gpus:
            names = ", ".join(g.name for g in self.gpus)
            text += f" · {self.vram_total / GB:.1f} GB VRAM ({names})"
        else:
            text += " · no GPU found"
        return text


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


def nvidia_smi_gpus() -> tuple[Gpu, ...]:
    """NVIDIA GPUs as nvidia-smi reports them (none when it is missing or fails)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return ()
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=3, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            gpus.append(Gpu(parts[0], int(parts[1]) * 1024 * 1024, int(parts[2]) * 1024 * 1024))
    return tuple(gpus)


@lru_cache(maxsize=1)
def detect_hardware() -> Hardware:
    """This machine, or the one HEARTH_HARDWARE describes (``ram=16GB,vram=8GB``)."""
    spec = os.environ.get("HEARTH_HARDWARE")
    if spec:
        return describe(spec)
    memory = psutil.virtual_memory()
    if sys.platform == "darwin" and os.uname().machine == "arm64":
        # Apple silicon: Metal uses the same memory; about 3/4 of it is available to the GPU.
        usable = memory.total * 3 // 4
        return Hardware(memory.total, memory.available, (Gpu("Apple GPU (Metal)", usable, usable),), True)
    return Hardware(memory.total, memory.available, nvidia_smi_gpus())
