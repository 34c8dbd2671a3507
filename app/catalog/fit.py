"""Will a variant run here? Memory estimates and a green / amber / red verdict."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from app.catalog.hardware import GB, Hardware
from app.catalog.model import Variant

# llama.cpp's compute buffers and a modest context, beyond the weights themselves.
RUNTIME_OVERHEAD = 300_000_000
CONTEXT_SHARE = 0.10


class Fit(Enum):
    """How well a variant fits: runs well, runs with compromises, or does not run."""

    GOOD = "fits"
    TIGHT = "tight"
    NO = "too big"


@dataclass(frozen=True)
class FitReport:
    fit: Fit
    need_bytes: int
    reason: str


def memory_needed(variant: Variant) -> int:
    """Bytes of RAM or VRAM needed to run the variant with a few thousand tokens of context."""
    if variant.max_ram_bytes:
        return variant.max_ram_bytes
    return int(variant.size_bytes * (1 + CONTEXT_SHARE)) + RUNTIME_OVERHEAD


def assess(variant: Variant, hw: Hardware) -> FitReport:
    """Judge a variant against the machine's memory."""
    need = memory_needed(variant)
    need_gb = f"{need / GB:.1f} GB"
    if variant.format == "gptq":
        # GPTQ loaders run on the GPU alone.
        if not hw.gpus:
            return FitReport(Fit.NO, need, f"needs a GPU with {need_gb}; none found")
        if need <= hw.vram_free:
            return FitReport(Fit.GOOD, need, f"needs {need_gb} of VRAM; {hw.vram_free / GB:.1f} GB free")
        if need <= hw.vram_total:
            return FitReport(Fit.TIGHT, need, f"needs {need_gb} of VRAM; close other GPU programs")
        return FitReport(Fit.NO, need, f"needs {need_gb} of VRAM; the GPU has {hw.vram_total / GB:.1f} GB")
    if hw.gpus and not hw.unified_memory and need <= hw.vram_free:
        return FitReport(Fit.GOOD, need, f"{need_gb}: runs entirely on the GPU")
    if need <= hw.ram_total * 0.75:
        return FitReport(Fit.GOOD, need, f"{need_gb}: fits in RAM")
    if need <= hw.ram_total + (0 if hw.unified_memory else hw.vram_total):
        return FitReport(Fit.TIGHT, need, f"{need_gb}: runs, but fills memory (split across RAM and GPU)")
    total = hw.ram_total + (0 if hw.unified_memory else hw.vram_total)
    return FitReport(Fit.NO, need, f"{need_gb}: more than this machine's {total / GB:.1f} GB")
