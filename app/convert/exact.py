"""Exact GPTQ -> llama.cpp blocks: Q4_0 / Q4_1 / Q8_0 tensors that hold the GPTQ weights themselves.

GPTQ stores, per group of input columns, a scale ``s`` and an integer zero ``z``: ``w = s * (q - z)``.
llama.cpp's 32-weight blocks store ``w = d * (q' - 8)`` (Q4_0), ``w = d * q' + m`` (Q4_1) or
``w = d * q'`` with signed ``q'`` (Q8_0). When every 32-weight block of a row lies inside one GPTQ
group (decided from ``g_idx``, whatever ``desc_act`` says), ``d = s`` and:

* Q4_0 with ``q' = q - z + 8`` is exact to the bit when that stays in 0..15 for every code the
  layer's bits allow: always for 2- and 3-bit (zeros 0..8), and for 4-bit when the zero is 8
  (symmetric GPTQ, the common case);
* Q4_1 with ``q' = q``, ``m = -s*z`` is exact up to the float16 rounding of ``m`` (other 4-bit);
* Q8_0 with ``q' = q - 128`` is exact to the bit for symmetric 8-bit GPTQ (zero 128).

Anything else (groups permuted by act order, groups not a multiple of 32 wide, asymmetric 8-bit)
has no exact block format and is requantised.
"""

from __future__ import annotations

from dataclasses import dataclass

import gguf
import numpy as np

from app.convert.gptq import GptqSettings, QuantisedLinear, unpack_words

Q = gguf.GGMLQuantizationType
BLOCK = 32


@dataclass(frozen=True)
class ExactFit:
    """How one GPTQ layer fits llama.cpp's blocks: ``qtype`` when exactly, else None and ``reason``."""

    qtype: gguf.GGMLQuantizationType | None
    reason: str = ""

    @property
    def exact(self) -> bool:
        return self.qtype is not None


def blocks_within_groups(g_idx: np.ndarray) -> bool:
    """Whether every run of 32 consecutive input columns belongs to a single GPTQ group."""
    if g_idx.size % BLOCK:
        return False
    blocks = np.asarray(g_idx).reshape(-1, BLOCK)
    return bool((blocks == blocks[:, :1]).all())


def fit(layer: QuantisedLinear) -> ExactFit:
    """Which block type holds ``layer`` exactly, judged from its ``g_idx``, zeros and scales (not its codes)."""
    return fit_parts(layer.settings, layer.g_idx, layer.zeros(), layer.scales)


def fit_parts(settings: GptqSettings, g_idx: np.ndarray, zeros: np.ndarray, scales: np.ndarray) -> ExactFit:
    """:func:`fit` from a layer's parts: ``zeros`` with the v1 offset applied, ``scales`` as stored."""
    if not blocks_within_groups(g_idx):
        if np.any(np.diff(g_idx) < 0):
            return ExactFit(None, "act-order groups")
        return ExactFit(None, f"groups of {settings.group_size} columns")
    if scales.dtype != np.float16 and not np.array_equal(scales.astype(np.float16).astype(scales.dtype), scales):
        return ExactFit(None, "float32 scales")
    z = np.rint(zeros).astype(np.int64)
    if settings.bits == 8:
        return ExactFit(Q.Q8_0) if bool((z == 128).all()) else ExactFit(None, "asymmetric 8-bit zeros")
    top = (1 << settings.bits) - 1
    if int(z.min()) >= top - 7 and int(z.max()) <= 8:  # q - z + 8 in 0..15 for every q in 0..top
        return ExactFit(Q.Q4_0)
    return ExactFit(Q.Q4_1)


def _spread_nibbles(words: np.ndarray) -> np.ndarray:
    """uint32 words -> uint64 whose byte ``i`` holds nibble ``i`` of the word in its low half."""
    x = words.astype(np.uint64)
    x = (x | (x << np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    x = (x | (x << np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    return (x | (x << np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)


def _nibbles_from_words(words: np.ndarray) -> np.ndarray:
    """4-bit GPTQ words ``[k, blocks * 4]`` -> llama.cpp's 16 nibble bytes per block ``[k, blocks, 16]``.

    A block's 32 codes sit in 4 words, code ``j`` at bits ``4*(j % 8)`` of word ``j // 8``; llama.cpp
    wants byte ``j`` = code ``j`` | code ``j + 16`` << 4, i.e. bytes 0..7 from words 0 and 2, bytes
    8..15 from words 1 and 3, nibble by nibble: no unpacking to one byte per code.
    """
    k = words.shape[0]
    w = words.reshape(k, -1, 4)
    low = _spread_nibbles(w[..., 0:2]) | (_spread_nibbles(w[..., 2:4]) << np.uint64(4))  # [k, blocks, 2]
    return low.astype("<u8").view(np.uint8).reshape(k, -1, 16)


def pack_rows(layer: QuantisedLinear, rows: np.ndarray | slice, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    """The GGUF bytes ``[k, in/32 * block_bytes]`` of output channels ``rows`` as ``qtype`` blocks."""
    words, zeros, scales = layer.packed_rows(rows)
    k, n_blocks = words.shape[0], layer.in_features // BLOCK
    group = layer.g_idx[::BLOCK]  # one group per block (checked by fit)
    z = np.rint(np.take(zeros, group, axis=1)).astype(np.int16)[..., None]  # [k, blocks, 1]
    s = np.take(scales, group, axis=1)  # [k, blocks], float16 values held in float32
    d = s.astype(np.float16).view(np.uint8).reshape(k, n_blocks, 2)
    if layer.settings.bits == 4 and qtype in (Q.Q4_0, Q.Q4_1):
        # Q4_0 only when every zero is 8 (see fit), so q' = q - 8 + 8 = q; Q4_1 keeps q: copy the nibbles.
        parts = [d] if qtype == Q.Q4_0 else \
            [d, (-(s * z[..., 0].astype(np.float32))).astype(np.float16).view(np.uint8).reshape(k, n_blocks, 2)]
        return np.concatenate([*parts, _nibbles_from_words(words)], axis=-1).reshape(k, -1)
    q = unpack_words(words, layer.settings.bits)
    codes = q.reshape(k, n_blocks, BLOCK)
    if qtype == Q.Q8_0:
        signed = (codes.astype(np.int16) - z).astype(np.int8).view(np.uint8)
        return np.concatenate([d, signed], axis=-1).reshape(k, -1)
    if qtype == Q.Q4_0:
        nibbles = (codes.astype(np.int16) - z + 8).astype(np.uint8)
        parts = [d]
    elif qtype == Q.Q4_1:
        nibbles = codes
        m = (-(s * z[..., 0].astype(np.float32))).astype(np.float16).view(np.uint8).reshape(k, n_blocks, 2)
        parts = [d, m]
    else:
        raise ValueError(f"{qtype.name} cannot hold GPTQ weights exactly")
    packed = nibbles[..., : BLOCK // 2] | (nibbles[..., BLOCK // 2:] << np.uint8(4))
    return np.concatenate([*parts, packed], axis=-1).reshape(k, -1)
