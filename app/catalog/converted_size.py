"""What a GPTQ branch becomes once Hearth converts it for llama.cpp: the GGUF type, and its size before converting.

The converter (:mod:`app.convert.plan`) writes a branch whose 32-weight blocks each lie inside one
GPTQ group as its exact weights in llama.cpp blocks: Q8_0 for 8-bit, Q4_0 for 2-, 3- and 4-bit
(llama.cpp has no exact 2- or 3-bit group type, so 3-bit values take 4-bit blocks: about 1.4x the
branch). Other branches (act-order groups, groups not a multiple of 32) are requantised by llama.cpp
to the best measured of a size class. The tables below are the converter's too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from app.catalog.model import Variant

# Used when nothing is measured (quality step off) and as the smaller alternative to an exact 3-bit file.
DEFAULT_TYPE_FOR_BITS = {2: "q3_k_m", 3: "q3_k_m", 4: "q4_k_m", 8: "q8_0"}
# The types of each size class that a branch without an exact form is requantised to and measured.
CANDIDATES_FOR_BITS: dict[int, tuple[str, ...]] = {
    2: ("q3_k_m", "q3_k_s", "q3_k_l"), 3: ("q3_k_m", "q3_k_s", "q3_k_l"),
    4: ("q4_k_m", "q4_k_s", "iq4_nl"), 8: ("q8_0",),
}
# Approximate bits per weight of llama.cpp's types on llama models (its quantizer keeps some tensors
# higher in the K-quant mixes), for size estimates before converting.
BITS_PER_WEIGHT = {
    "f16": 16.0, "q8_0": 8.5, "q6_k": 6.56, "q5_k_m": 5.7, "q5_k_s": 5.54, "q5_1": 6.0, "q5_0": 5.5,
    "q4_k_m": 4.85, "q4_k_s": 4.58, "q4_1": 5.0, "q4_0": 4.5, "iq4_nl": 4.5, "iq4_xs": 4.25,
    "q3_k_l": 4.27, "q3_k_m": 3.91, "q3_k_s": 3.5, "q2_k": 3.35,
}
# The block type that holds a symmetric GPTQ branch's weights exactly (an asymmetric 2/3/4-bit one
# takes Q4_1, 0.5 bit more; the catalogue does not say which, and GPTQ branches are mostly symmetric).
EXACT_TYPE_FOR_BITS = {2: "q4_0", 3: "q4_0", 4: "q4_0", 8: "q8_0"}
_F16_BITS = 16


@cache
def block_bits_per_weight(type_name: str) -> float:
    """Bits per weight of one of llama.cpp's block types, from gguf's table of block sizes."""
    import gguf  # with numpy: only once a GPTQ branch is sized

    block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[type_name.upper()]]
    return type_size * 8 / block


def converts_exactly(variant: Variant) -> bool:
    """Whether the converter can keep this branch's GPTQ weights as they are (judged from the catalogue)."""
    grouped = variant.group_size is None or variant.group_size % 32 == 0
    # Without groups (one per row), act order reorders nothing a block could notice.
    return grouped and not (variant.act_order and variant.group_size is not None) and variant.bits in \
        EXACT_TYPE_FOR_BITS


@dataclass(frozen=True)
class ConvertedSize:
    """The GGUF a GPTQ branch converts to: its type (or the candidates measured), exactness and bytes."""

    types: tuple[str, ...]
    exact: bool
    size_bytes: int

    @property
    def type_label(self) -> str:
        """``Q4_0``, or ``Q4_K_M, Q4_K_S or IQ4_NL`` when the converter measures which."""
        names = [t.upper() for t in self.types]
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _unquantised_parameters(variant: Variant, parameters: int) -> int:
    """The parameters a GPTQ branch keeps in F16 (embeddings, output), from its size: the rest cost the
    GPTQ bits plus one F16 scale and one packed zero per group and output."""
    gptq_bits = variant.bits + ((_F16_BITS + variant.bits) / variant.group_size if variant.group_size else 0)
    rest = (variant.size_bytes - parameters * gptq_bits / 8) / ((_F16_BITS - gptq_bits) / 8)
    return int(min(max(rest, 0), parameters))


def converted_size(variant: Variant, parameters: int) -> ConvertedSize:
    """The GGUF that ``hearth convert`` writes for a GPTQ branch of a model with ``parameters`` weights.

    Exact: the quantised weights at the block type's bits per weight, the F16 tensors kept as they are
    (as the converter writes them). Requantised: every matrix at the widest candidate's size, as the
    converter's own plan estimates before measuring.
    """
    if converts_exactly(variant):
        kind = EXACT_TYPE_FOR_BITS[variant.bits]
        plain = _unquantised_parameters(variant, parameters)
        size = (parameters - plain) * block_bits_per_weight(kind) / 8 + plain * _F16_BITS / 8
        return ConvertedSize((kind,), True, int(size))
    candidates = CANDIDATES_FOR_BITS.get(variant.bits, CANDIDATES_FOR_BITS[4])
    widest = max(BITS_PER_WEIGHT[c] for c in candidates)
    return ConvertedSize(candidates, False, int(parameters * widest / 8))
