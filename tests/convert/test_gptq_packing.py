"""GPTQ unpacking and dequantisation against our own packer, over every bits/group/act-order/sym/format mix."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from app.convert.errors import ConvertError
from app.convert.gptq import GptqSettings, QuantisedLinear, unpack_values
from tests.convert.tiny_gptq import GptqConfig, pack_values, quantise, reference_dequantise

MATRIX = [GptqConfig(*combo) for combo in itertools.product(
    (2, 3, 4, 8), (32, 64, 128, -1), (False, True), (True, False), ("gptq", "gptq_v2"))]


def _layer(packed, cfg: GptqConfig, g_idx=True) -> QuantisedLinear:
    settings = GptqSettings(cfg.bits, cfg.group_size, cfg.desc_act, cfg.sym, cfg.checkpoint_format)
    return QuantisedLinear.build("layer", packed.qweight, packed.qzeros, packed.scales,
                                 packed.g_idx if g_idx else None, settings)


@pytest.mark.parametrize("cfg", MATRIX, ids=lambda c: c.id)
def test_round_trip_matches_reference_exactly(cfg: GptqConfig) -> None:
    rng = np.random.default_rng(cfg.bits * 1000 + cfg.group_size)
    weight = rng.standard_normal((96, 256)).astype(np.float32)
    packed = quantise(weight, cfg, rng)
    assert packed.qweight.shape == (256 * cfg.bits // 32, 96)
    assert packed.qzeros.shape == (packed.scales.shape[0], 96 * cfg.bits // 32)
    assert np.array_equal(unpack_values(packed.qweight, cfg.bits, axis=0), packed.q)
    layer = _layer(packed, cfg)
    expected = reference_dequantise(packed)
    assert np.array_equal(layer.dequantise(), expected)
    rows = rng.permutation(96)[:40]
    assert np.array_equal(layer.dequantise_rows(rows), expected[rows])
    # The dequantised weights are the quantised ones: within one step of the original (half a step from
    # rounding, a whole one where symmetric quantisation clips the largest value at maxq).
    assert np.abs(expected - weight).max() <= packed.scales.astype(np.float32).max() * 1.01


def test_three_bit_values_straddle_words() -> None:
    values = np.zeros((32, 1), dtype=np.uint8)
    values[10, 0] = 0b111  # bits 30..32: two in word 0, one in word 1
    values[21, 0] = 0b101  # bits 63..65: one in word 1, two in word 2
    words = pack_values(values, 3, axis=0).view(np.uint32)[:, 0]
    assert [hex(w) for w in words] == ["0xc0000000", "0x80000001", "0x2"]
    assert np.array_equal(unpack_values(words.view(np.int32)[:, None], 3, axis=0), values)


def test_v1_stores_zero_minus_one_and_v2_as_is() -> None:
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((32, 64)).astype(np.float32)
    v1 = quantise(weight, GptqConfig(4, 32, False, False, "gptq"), rng)
    v1_layer = _layer(v1, GptqConfig(4, 32, False, False, "gptq"))
    v2_reading = _layer(v1, GptqConfig(4, 32, False, False, "gptq_v2"))
    assert np.array_equal(v1_layer.zeros(), v1.zeros.astype(np.float32))
    assert np.array_equal(v2_reading.zeros() + 1, v1_layer.zeros())


def test_missing_g_idx_means_sequential_groups() -> None:
    cfg = GptqConfig(4, 64, False, True, "gptq")
    rng = np.random.default_rng(2)
    packed = quantise(rng.standard_normal((32, 256)).astype(np.float32), cfg, rng)
    assert np.array_equal(_layer(packed, cfg, g_idx=False).dequantise(), reference_dequantise(packed))


def test_shapes_that_disagree_are_named() -> None:
    cfg = GptqConfig(4, 64, False, True, "gptq")
    rng = np.random.default_rng(3)
    packed = quantise(rng.standard_normal((32, 256)).astype(np.float32), cfg, rng)
    with pytest.raises(ConvertError, match=r"layer\.scales has shape \[4, 31\]"):
        QuantisedLinear.build("layer", packed.qweight, packed.qzeros, packed.scales[:, :31], packed.g_idx,
                              GptqSettings(4, 64, False, True, "gptq"))
    with pytest.raises(ConvertError, match=r"layer\.qzeros has shape"):  # really 4-bit, read as 8-bit
        QuantisedLinear.build("layer", packed.qweight, packed.qzeros, packed.scales, None,
                              GptqSettings(8, 64, False, True, "gptq"))
    bad_g_idx = packed.g_idx.copy()
    bad_g_idx[5] = 9
    with pytest.raises(ConvertError, match="g_idx points outside"):
        QuantisedLinear.build("layer", packed.qweight, packed.qzeros, packed.scales, bad_g_idx,
                              GptqSettings(4, 64, True, True, "gptq"))


@pytest.mark.parametrize("desc_act", [False, True])
def test_ragged_last_group(desc_act: bool) -> None:
    """320 inputs in groups of 128: the last group holds 64, so groups cannot be reshaped evenly."""
    cfg = GptqConfig(4, 128, desc_act, False, "gptq_v2")
    rng = np.random.default_rng(4)
    packed = quantise(rng.standard_normal((64, 320)).astype(np.float32), cfg, rng)
    assert np.array_equal(_layer(packed, cfg).dequantise(), reference_dequantise(packed))
