"""Will a variant run here? Memory estimates and a green / amber / red verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from app.catalog.converted_size import ConvertedSize, converted_size
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


def _converted(variant: Variant, parameters: int | None) -> ConvertedSize | None:
    """The GGUF a GPTQ branch becomes for llama.cpp (Hearth runs GPTQ only that way); None for a GGUF."""
    if variant.format != "gptq" or not parameters:
        return None
    return converted_size(variant, parameters)


def memory_needed(variant: Variant, parameters: int | None = None) -> int:
    """Bytes of RAM or VRAM needed to run the variant with a few thousand tokens of context.

    A GPTQ branch runs here once converted to GGUF: with the model's ``parameters`` known, it is sized
    as the converted file (an exact 3-bit branch takes 4-bit blocks: about 1.4x the download).
    """
    return _need(variant, _converted(variant, parameters))


def _need(variant: Variant, converted: ConvertedSize | None) -> int:
    if variant.max_ram_bytes:
        return variant.max_ram_bytes
    size = converted.size_bytes if converted else variant.size_bytes
    return int(size * (1 + CONTEXT_SHARE)) + RUNTIME_OVERHEAD


def assess(variant: Variant, hw: Hardware, remote_free: int = 0, *, parameters: int | None = None,
           remote_names: Sequence[str] = ()) -> FitReport:
    """Judge a variant against the machine's memory, and the remote machines' (free bytes) if any.

    ``parameters``: the model's, to size a GPTQ branch as the GGUF it converts to. ``remote_names``:
    the machines whose free memory ``remote_free`` adds up, named in the reason.
    """
    converted = _converted(variant, parameters)
    report = _with_remotes(_assess_here(variant, hw, converted), hw, remote_free, remote_names)
    note = _converted_note(variant, converted)
    return FitReport(report.fit, report.need_bytes, report.reason + note) if note else report


def _with_remotes(report: FitReport, hw: Hardware, remote_free: int, remote_names: Sequence[str]) -> FitReport:
    """A model too big for this machine alone may fit split across it and the remote machines."""
    if report.fit is not Fit.NO or remote_free <= 0:
        return report
    # Layers spread over this machine and `hearth rpc-server`s (llama.cpp's RPC backend); a GPTQ
    # branch too, once converted to GGUF.
    here = hw.ram_available + (0 if hw.unified_memory else hw.vram_free)
    count = len(remote_names)
    machines = f"{count} remote machine{'s' if count != 1 else ''}" if count else "your remote machines"
    free = f"{remote_free / GB:.1f} GB free there" + (f" ({', '.join(remote_names)})" if count else "")
    if report.need_bytes <= here + remote_free:
        return FitReport(Fit.REMOTE, report.need_bytes,
                         f"{report.need_bytes / GB:.1f} GB: too big for this machine, but fits split across it "
                         f"and {machines}: {free}")
    return FitReport(Fit.NO, report.need_bytes, f"{report.reason}, even with {machines}: {free}")


def _converted_note(variant: Variant, converted: ConvertedSize | None) -> str:
    """What the estimate is of: the converted GGUF, when it differs from the branch."""
    if converted is None:
        return ""
    kind = converted.type_label if converted.exact else f"{converted.type_label} (the best measured)"
    note = f"; sized as the GGUF Hearth converts it to: {kind}, about {converted.size_bytes / GB:.1f} GB"
    if converted.exact and variant.bits < 4:
        note += (f", against the branch's {variant.size_bytes / GB:.1f} GB ({variant.bits}-bit weights in "
                 f"4-bit blocks: llama.cpp has no exact {variant.bits}-bit type)")
    return note


def _assess_here(variant: Variant, hw: Hardware, converted: ConvertedSize | None) -> FitReport:
    need = _need(variant, converted)
    need_gb = f"{need / GB:.1f} GB"
    if variant.format == "gptq":
        # llama.cpp cannot load GPTQ as it is: converted to GGUF, it runs like any GGUF.
        if hw.gpus and not hw.unified_memory and need <= hw.vram_free:
            return FitReport(Fit.GOOD, need, f"needs {need_gb} of VRAM; {hw.vram_free / GB:.1f} GB free")
        report = _ram_fit(need, hw)
        if report.fit is not Fit.NO:
            where = hw.no_gpu_reason if not hw.gpus else f"the GPU has {hw.vram_free / GB:.1f} GB free"
            return FitReport(report.fit, need, f"{report.reason} after converting for llama.cpp ({where})")
        return report
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
