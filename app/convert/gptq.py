"""GPTQ quantisation settings and numpy dequantisation of packed ``qweight``/``qzeros`` tensors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from app.convert.errors import ConvertError

SUPPORTED_BITS = (2, 3, 4, 8)


@dataclass(frozen=True)
class GptqSettings:
    """How a branch was quantised.

    ``zero_offset`` is 1 for the original ``gptq`` (v1) checkpoint format, which stores each zero
    point minus one, and 0 for ``gptq_v2``, which stores it as is.
    """

    bits: int
    group_size: int
    desc_act: bool
    sym: bool
    checkpoint_format: str

    @property
    def zero_offset(self) -> int:
        return 0 if self.checkpoint_format == "gptq_v2" else 1

    @property
    def label(self) -> str:
        group = "no groups" if self.group_size <= 0 else f"group {self.group_size}"
        order = ", act order" if self.desc_act else ""
        return f"{self.bits}-bit GPTQ, {group}{order}"


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConvertError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConvertError(f"{path.name} is not valid JSON ({exc}); download the branch again") from None
    if not isinstance(data, dict):
        raise ConvertError(f"{path.name} does not hold a JSON object; download the branch again")
    return data


def read_settings(folder: Path, config: dict[str, Any]) -> GptqSettings:
    """The GPTQ settings from ``config.json``'s ``quantization_config`` or ``quantize_config.json``."""
    raw = config.get("quantization_config")
    quantize_config = folder / "quantize_config.json"
    if not isinstance(raw, dict) and quantize_config.is_file():
        raw = read_json(quantize_config)
        raw.setdefault("quant_method", "gptq")
    if not isinstance(raw, dict):
        raise ConvertError(f"{folder} is not a GPTQ branch: config.json has no quantization_config and there "
                           "is no quantize_config.json (an unquantised model needs no conversion here)")
    method = str(raw.get("quant_method", "gptq")).lower()
    if method != "gptq":
        raise ConvertError(f"{folder} is quantised with {method!r}, not GPTQ; Hearth converts GPTQ branches only")
    try:
        bits = int(raw["bits"])
        group_size = int(raw.get("group_size", -1))
    except (KeyError, TypeError, ValueError):
        raise ConvertError(f"the GPTQ settings in {folder} have no valid 'bits'; download the branch again") from None
    if bits not in SUPPORTED_BITS:
        raise ConvertError(f"{bits}-bit GPTQ is not supported (Hearth converts {', '.join(map(str, SUPPORTED_BITS))}"
                           "-bit branches)")
    fmt = str(raw.get("checkpoint_format") or raw.get("format") or "gptq").lower()
    if fmt not in ("gptq", "gptq_v2"):
        raise ConvertError(f"GPTQ checkpoint format {fmt!r} is not supported (only 'gptq' and 'gptq_v2')")
    return GptqSettings(bits=bits, group_size=group_size, desc_act=bool(raw.get("desc_act", False)),
                        sym=bool(raw.get("sym", True)), checkpoint_format=fmt)


def _unpack_last_axis(words: np.ndarray, bits: int) -> np.ndarray:
    """Unpack along the last axis (see :func:`unpack_values`), vectorised per block of ``bits`` words."""
    n_words = words.shape[-1]
    if n_words % bits:
        raise ValueError(f"{n_words} packed words are not whole blocks of {bits} words")
    lead = words.shape[:-1]
    mask = np.uint32((1 << bits) - 1)
    if 32 % bits == 0:  # 2, 4, 8 bits: no value crosses a word
        shifts = np.arange(0, 32, bits, dtype=np.uint32)
        values = (words[..., None] >> shifts) & mask
        return values.astype(np.uint8).reshape(*lead, n_words * 32 // bits)
    if bits != 3:
        raise ValueError(f"{bits}-bit packing is not supported")
    blocks = words.reshape(*lead, n_words // 3, 3)
    w0, w1, w2 = (blocks[..., i].astype(np.uint64) for i in range(3))
    low = w0 | (w1 << np.uint64(32))  # values 0..20 whole, at bits 0..62
    first = (low[..., None] >> (np.arange(21, dtype=np.uint64) * np.uint64(3))) & np.uint64(7)
    middle = ((w1 >> np.uint64(31)) | ((w2 & np.uint64(3)) << np.uint64(1)))[..., None]  # value 21, bits 63..65
    last = (w2[..., None] >> (np.arange(10, dtype=np.uint64) * np.uint64(3) + np.uint64(2))) & np.uint64(7)
    values = np.concatenate([first, middle, last], axis=-1)
    return values.astype(np.uint8).reshape(*lead, n_words // 3 * 32)


def unpack_words(words: np.ndarray, bits: int) -> np.ndarray:
    """Unpack uint32 words along their last axis into ``32 / bits`` times as many uint8 values."""
    return _unpack_last_axis(words, bits)


def unpack_values(words: np.ndarray, bits: int, axis: int) -> np.ndarray:
    """Unpack ``bits``-wide unsigned values packed little-endian into int32 words along ``axis``.

    Every ``bits`` consecutive words hold 32 values; value ``j`` of a block occupies bits
    ``[j*bits, (j+1)*bits)`` of the block read as one little-endian integer. For 2/4/8 bits no value
    crosses a word; for 3 bits (32 values in 3 words) values 10 and 21 straddle two words.
    Returns uint8 values with ``axis`` grown by ``32 / bits``.
    """
    moved = np.moveaxis(words.view(np.uint32), axis, -1)
    return np.moveaxis(_unpack_last_axis(moved, bits), -1, axis)


@dataclass(frozen=True)
class QuantisedLinear:
    """The packed tensors of one GPTQ linear layer, checked against each other.

    ``qweight`` is int32 ``[in*bits/32, out]``, ``qzeros`` int32 ``[groups, out*bits/32]``, ``scales``
    float16 ``[groups, out]`` and ``g_idx`` int32 ``[in]`` (input channel -> group).
    """

    name: str
    qweight: np.ndarray
    qzeros: np.ndarray
    scales: np.ndarray
    g_idx: np.ndarray
    settings: GptqSettings

    @property
    def in_features(self) -> int:
        return self.qweight.shape[0] * 32 // self.settings.bits

    @property
    def out_features(self) -> int:
        return int(self.qweight.shape[1])

    @classmethod
    def build(cls, name: str, qweight: np.ndarray, qzeros: np.ndarray, scales: np.ndarray,
              g_idx: np.ndarray | None, settings: GptqSettings) -> QuantisedLinear:
        """Check the shapes agree (naming the first that does not) and fill in a missing ``g_idx``."""
        bits = settings.bits
        if qweight.ndim != 2 or qzeros.ndim != 2 or scales.ndim != 2:
            raise ConvertError(f"{name}: qweight, qzeros and scales must be 2-D; the checkpoint is damaged")
        in_features, out_features = qweight.shape[0] * 32 // bits, qweight.shape[1]
        if qweight.shape[0] % bits:
            raise ConvertError(f"{name}.qweight has {qweight.shape[0]} rows, not a multiple of {bits} as "
                               f"{bits}-bit packing needs; the checkpoint does not match its GPTQ settings")
        if g_idx is None:
            size = settings.group_size if settings.group_size > 0 else in_features
            g_idx = np.arange(in_features, dtype=np.int32) // size
        groups = scales.shape[0]
        expected = {
            "scales": ((groups, out_features), scales.shape),
            "qzeros": ((groups, out_features * bits // 32), qzeros.shape),
            "g_idx": ((in_features,), g_idx.shape),
        }
        for tensor, (want, got) in expected.items():
            if tuple(want) != tuple(got):
                raise ConvertError(f"{name}.{tensor} has shape {list(got)} but qweight {list(qweight.shape)} "
                                   f"at {bits} bits needs {list(want)}; the checkpoint does not match its GPTQ "
                                   "settings (wrong bits?) or is damaged")
        if settings.group_size > 0 and not settings.desc_act and groups != -(-in_features // settings.group_size):
            raise ConvertError(f"{name} has {groups} groups but {in_features} inputs in groups of "
                               f"{settings.group_size} make {-(-in_features // settings.group_size)}; "
                               "the checkpoint does not match its GPTQ settings")
        if g_idx.size and (int(g_idx.min()) < 0 or int(g_idx.max()) >= groups):
            raise ConvertError(f"{name}.g_idx points outside its {groups} groups; the checkpoint is damaged")
        return cls(name, qweight, qzeros, scales, g_idx.astype(np.int64), settings)

    def zeros(self) -> np.ndarray:
        """Zero points ``[groups, out]`` as float32, with the v1 offset applied."""
        unpacked = unpack_values(self.qzeros, self.settings.bits, axis=1).astype(np.float32)
        return unpacked + np.float32(self.settings.zero_offset)

    def prepare(self) -> None:
        """Compute the shared layouts now, before threads dequantise blocks of rows concurrently."""
        self._by_output  # noqa: B018 - cached_property does the work
        self._group_layout  # noqa: B018

    @cached_property
    def _by_output(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """qweight, zeros and scales with the output channel first (contiguous rows to slice)."""
        qweight = np.ascontiguousarray(self.qweight.view(np.uint32).T)
        zeros = np.ascontiguousarray(self.zeros().T)
        scales = np.ascontiguousarray(self.scales.astype(np.float32).T)
        return qweight, zeros, scales

    @cached_property
    def _group_layout(self) -> tuple[np.ndarray | None, np.ndarray | None, int] | None:
        """(input order that makes groups contiguous and its inverse, both None if they already are; group
        width), or None when the groups are ragged."""
        groups = self.scales.shape[0]
        counts = np.bincount(self.g_idx, minlength=groups)
        if counts.min() != counts.max():
            return None
        order = np.argsort(self.g_idx, kind="stable")
        if np.array_equal(order, np.arange(len(order))):
            return None, None, int(counts[0])
        return order, np.argsort(order), int(counts[0])

    def packed_rows(self, rows: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For output channels ``rows``: the packed words ``[k, in*bits/32]`` (uint32), zeros and scales
        ``[k, groups]`` (float32, zeros with the v1 offset applied), as stored."""
        qweight, zeros, scales = self._by_output
        if isinstance(rows, slice):
            return qweight[rows], zeros[rows], scales[rows]
        packed, z, s = (np.take(a, rows, axis=0) for a in (qweight, zeros, scales))
        return packed, z, s

    def codes_rows(self, rows: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`packed_rows` with the codes unpacked to ``[k, in]`` (uint8); nothing dequantised."""
        packed, z, s = self.packed_rows(rows)
        return _unpack_last_axis(packed, self.settings.bits), z, s

    def dequantise_rows(self, rows: np.ndarray | slice) -> np.ndarray:
        """Float32 weight rows ``[len(rows), in]`` (GGUF's ``[out, in]`` layout) for output channels ``rows``.

        W = scales[g_idx] * (q - zeros[g_idx]). A float16 scale times an integer below 2**9 is exact
        in float32, so this equals the real-valued dequantisation bit for bit. With act order the
        inputs are first put in group order (``np.take``, far faster than fancy indexing) and back after.
        """
        q, z, s = self.codes_rows(rows)  # q: [k, in]
        layout = self._group_layout
        if layout is None:  # ragged groups: gather each input's zero and scale
            weights = q.astype(np.float32)
            weights -= np.take(z, self.g_idx, axis=1)
            weights *= np.take(s, self.g_idx, axis=1)
            return weights
        order, inverse, width = layout
        grouped = (q if order is None else np.take(q, order, axis=1)).astype(np.float32).reshape(len(z), -1, width)
        grouped -= z[:, :, None]
        grouped *= s[:, :, None]
        flat = grouped.reshape(len(z), -1)
        return flat if inverse is None else np.take(flat, inverse, axis=1)

    def dequantise(self) -> np.ndarray:
        return self.dequantise_rows(slice(None))
