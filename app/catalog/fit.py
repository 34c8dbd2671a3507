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
    REMOTE = "fits with your remote machines"
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


def assess(variant: Variant, hw: Hardware, remote_free: int = 0) -> FitReport:
    """Judge a variant against the machine's memory, and the remote machines' (free bytes) if any."""
    report = _assess_here(variant, hw)
    if report.fit is not Fit.NO or remote_free <= 0 or variant.format != "gguf":
        return report
    # Layers spread over this machine and `hearth rpc-server`s (llama.cpp's RPC backend).
    here = hw.ram_available + (0 if hw.unified_memory else hw.vram_free)
    if report.need_bytes <= here + remote_free:
        return FitReport(Fit.REMOTE, report.need_bytes,
                         f"{report.need_bytes / GB:.1f} GB: too big for this machine, but fits split across "
                         f"it and your remote machines ({remote_free / GB:.1f} GB free there)")
    return FitReport(Fit.NO, report.need_bytes, f"{report.reason}, even with your remote machines' "
                     f"{remote_free / GB:.1f} GB free")


def _assess_here(variant: Variant, hw: Hardware) -> FitReport:
    need = memory_needed(variant)
    need_gb = f"{need / GB:.1f} GB"
    if variant.format == "gptq":
        # GPTQ loaders run on the GPU alone; converted to GGUF (about the same size at the
        # nearest K-quant) it runs in llama.cpp like any GGUF.
        if hw.gpus and not hw.unified_memory and need <= hw.vram_free:
            return FitReport(Fit.GOOD, need, f"needs {need_gb} of VRAM; {hw.vram_free / GB:.1f} GB free")
        converted = _ram_fit(need, hw)
        if converted.fit is not Fit.NO:
            where = hw.no_gpu_reason if not hw.gpus else f"the GPU has {hw.vram_free / GB:.1f} GB free"
            return FitReport(converted.fit, need, f"{converted.reason} after converting for llama.cpp ({where})")
        return converted
    if hw.gpus and not hw.unified_memory and need <= hw.vram_free:
        return FitReport(Fit.GOOD, need, f"{need_gb}: runs entirely on the GPU")
    report = _ram_fit(need, hw)
    if hw.gpu_note and not hw.gpus and report.fit is not Fit.NO:  # say why the GPU does not count
        return FitReport(report.fit, need, f"{report.reason} (CPU only: {hw.no_gpu_reason})")
    return report


def _ram_fit(need: int, hw: Hardware) -> FitReport:
    """Judge a llama.cpp load: in RAM, or split across RAM and the GPU."""
    need_gb = f"{need / GB:.1f} GB"
    if need <= hw.ram_total * 0.75:
        return FitReport(Fit.GOOD, need, f"{need_gb}: fits in RAM")
    if need <= hw.ram_total + (0 if hw.unified_memory else hw.vram_total):
        return FitReport(Fit.TIGHT, need, f"{need_gb}: runs, but fills memory (split across RAM and GPU)")
    total = hw.ram_total + (0 if hw.unified_memory else hw.vram_total)
    return FitReport(Fit.NO, need, f"{need_gb}: more than this machine's {total / GB:.1f} GB")
