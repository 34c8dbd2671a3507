"""Decide how a GPTQ branch converts before its weights are read: exact GPTQ blocks or requantised, and sizes.

Exact where llama.cpp's blocks can hold the GPTQ weights (:mod:`app.convert.exact`); otherwise the
branch is dequantised to F16 and requantised by llama.cpp, to a forced ``--type`` or, by default, to
whichever type of the branch's size class measures closest to the exact F16 model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gguf
import numpy as np

from app.catalog.converted_size import BITS_PER_WEIGHT, CANDIDATES_FOR_BITS, DEFAULT_TYPE_FOR_BITS
from app.convert.checkpoint import GptqBranch
from app.convert.errors import ConvertError
from app.convert.exact import ExactFit, fit_parts
from app.convert.gptq import GptqSettings, unpack_values
from app.convert.requantize import FTYPES
from app.convert.writer import nbytes

Q = gguf.GGMLQuantizationType
OUTPUT_TYPES = tuple(FTYPES)
# The type tables (default, candidates, bits per weight) are the catalogue's too: it sizes a branch before
# it is downloaded (app.catalog.converted_size).
EXACT_TYPES = {Q.Q4_0: "q4_0", Q.Q4_1: "q4_1", Q.Q8_0: "q8_0"}
EXACT_MODE = "exact GPTQ weights"


def human_size(size: int) -> str:
    """Decimal units as the Hub prints them: ``3.91 GB``, ``812.00 kB``."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1000
    return f"{value:.2f} TB"


def requantised_mode(out_type: str, reason: str) -> str:
    """``requantised to Q4_K_M (from act-order groups)``; ``reason`` empty when the user chose the type."""
    return f"requantised to {out_type.upper()} ({'from ' + reason if reason else 'as asked'})"


@dataclass(frozen=True)
class ConversionPlan:
    """What a conversion will do and write, known before converting.

    ``exact``: GPTQ blocks written as they are (``layer_types`` per quantised tensor); else the F16
    model is requantised to ``out_type``, or to the best measured of ``candidates`` when ``out_type``
    is None. ``reason`` says why a branch has no exact form. Sizes are in bytes (the exact output's
    exactly, the others estimated); ``smaller`` is a requantised choice smaller than the exact file.
    """

    settings: GptqSettings
    exact: bool
    out_type: str | None
    candidates: tuple[str, ...]
    reason: str
    branch_bytes: int
    output_bytes: int
    layer_types: dict[str, gguf.GGMLQuantizationType] = field(default_factory=dict)
    smaller: tuple[str, int] | None = None

    @property
    def mode(self) -> str:
        if self.exact:
            return EXACT_MODE
        if self.out_type is None:
            return f"requantised to the best measured of {', '.join(t.upper() for t in self.candidates)} " \
                   f"(from {self.reason})"
        return requantised_mode(self.out_type, self.reason)

    def size_lines(self) -> list[str]:
        """The sizes in words: the output against the branch, and the smaller choice when there is one."""
        delta = self.output_bytes - self.branch_bytes
        about = "" if self.exact else "about "
        compare = f"{human_size(abs(delta))} {'larger' if delta > 0 else 'smaller'} than the branch's " \
                  f"{human_size(self.branch_bytes)}"
        lines = [f"Output: {about}{human_size(self.output_bytes)} ({compare})"]
        if self.exact and delta > 0 and self.settings.bits < 4:
            lines[0] += f": {self.settings.bits}-bit values stored in 4-bit blocks"
        if self.smaller is not None:
            kind, size = self.smaller
            lines.append(f"Smaller choice: --type {kind} requantises to about {human_size(size)} "
                         f"({human_size(self.output_bytes - size)} less, not exact; its quality is measured "
                         "with the exact conversion)")
        return lines


def _layer_fit(branch: GptqBranch, base: str, in_features: int) -> ExactFit:
    """A layer's exact fit from its small tensors (g_idx, qzeros, scales); qweight is not read."""
    settings = branch.settings
    name = base + ".g_idx"
    if name in branch.shards:
        g_idx = branch.shards.array(name).astype(np.int64)
    else:
        size = settings.group_size if settings.group_size > 0 else in_features
        g_idx = np.arange(in_features, dtype=np.int64) // size
    zeros = unpack_values(branch.shards.array(base + ".qzeros"), settings.bits, axis=1).astype(np.int64)
    return fit_parts(settings, g_idx, zeros + settings.zero_offset, branch.shards.array(base + ".scales"))


def _estimate(branch: GptqBranch, out_type: str) -> int:
    total = 0
    for tensor in branch.plan:
        count = int(np.prod(tensor.shape, dtype=np.int64))
        total += count * 4 if len(tensor.shape) == 1 else int(count * BITS_PER_WEIGHT[out_type] / 8)
    return total


def plan_conversion(branch: GptqBranch, out_type: str | None = None) -> ConversionPlan:
    """How ``branch`` converts: exact when every layer fits llama.cpp's blocks and ``out_type`` (if given)
    is the type they fit; otherwise requantised to ``out_type`` or a measured choice."""
    if out_type is not None and out_type not in OUTPUT_TYPES:
        raise ConvertError(f"unknown output type {out_type!r}; choose one of {', '.join(OUTPUT_TYPES)}")
    settings = branch.settings
    branch_bytes = branch.shards.total_bytes
    fits = {t.gguf_name: _layer_fit(branch, t.sources[0][: -len(".qweight")], t.shape[1])
            for t in branch.plan if t.quantised}
    not_exact = sorted({f.reason for f in fits.values() if not f.exact})
    layer_types = {name: f.qtype for name, f in fits.items() if f.qtype is not None}
    exact_type = _file_type_name(set(layer_types.values())) if not not_exact else None
    if exact_type in ("q4_0", "q4_1") and out_type == "q4_1":  # Q4_1 holds whatever Q4_0 does, with m = -s*z
        exact_type, layer_types = "q4_1", dict.fromkeys(layer_types, Q.Q4_1)
    if exact_type is not None and out_type in (None, exact_type):
        size = sum(nbytes(t.shape, layer_types.get(t.gguf_name, Q.F32 if len(t.shape) == 1 else Q.F16))
                   for t in branch.plan)
        alternative = DEFAULT_TYPE_FOR_BITS[settings.bits]
        alt_size = _estimate(branch, alternative)
        smaller = (alternative, alt_size) if alt_size < size and alternative != exact_type else None
        return ConversionPlan(settings, True, exact_type, (), "", branch_bytes, size, layer_types, smaller)
    reason = "; ".join(not_exact)
    if out_type is not None:
        return ConversionPlan(settings, False, out_type, (out_type,), reason if not_exact else "",
                              branch_bytes, _estimate(branch, out_type))
    candidates = CANDIDATES_FOR_BITS[settings.bits]
    size = max(_estimate(branch, c) for c in candidates)
    return ConversionPlan(settings, False, None, candidates, reason, branch_bytes, size)


def _file_type_name(types: set[gguf.GGMLQuantizationType]) -> str | None:
    """The output type that names a file of exact blocks: Q4_1 if any layer needs it, else Q4_0 or Q8_0."""
    if not types:
        return None
    if Q.Q8_0 in types:
        return "q8_0" if types == {Q.Q8_0} else None
    return "q4_1" if Q.Q4_1 in types else "q4_0"
