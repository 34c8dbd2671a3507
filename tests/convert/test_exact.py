"""Exact GPTQ conversion: the default GGUF holds the GPTQ weights themselves, and llama.cpp agrees with F16."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest

from app.catalog.installed import read_conversion
from app.cli import main
from app.convert import (
    ConversionCancelled,
    ConvertError,
    ConvertProgress,
    convert_branch,
    plan_branch,
    run_conversion,
)
from app.convert.quality import compare_logits, model_logits
from app.convert.sources import ConvertSource, convert_source
from tests.convert.test_convert_llama import expected_tensors, read_gguf
from tests.convert.tiny_gptq import GptqConfig, build_checkpoint

Q = gguf.GGMLQuantizationType
# Branches llama.cpp's blocks hold exactly, and the block type Hearth writes for each.
EXACT = [
    (GptqConfig(4, 128, False, True, "gptq"), Q.Q4_0),  # TheBloke's "main": symmetric, zero 8
    (GptqConfig(4, 32, False, False, "gptq_v2"), Q.Q4_1),  # asymmetric: d = s, m = -s*z
    (GptqConfig(4, 64, True, True, "gptq", permuted=False), Q.Q4_0),  # act order, g_idx in order
    (GptqConfig(4, 128, True, False, "gptq", permuted=False), Q.Q4_1),
    (GptqConfig(4, -1, True, True, "gptq"), Q.Q4_0),  # the 70B "main": act order, no groups: one group per row
    (GptqConfig(3, 128, False, False, "gptq"), Q.Q4_0),  # 3-bit values 0..7 fit 4-bit blocks
    (GptqConfig(3, -1, False, True, "gptq_v2"), Q.Q4_0),
    (GptqConfig(3, 64, True, False, "gptq_v2", permuted=False), Q.Q4_0),
    (GptqConfig(2, 32, False, False, "gptq"), Q.Q4_0),
    (GptqConfig(8, 128, False, True, "gptq"), Q.Q8_0),  # symmetric 8-bit: zero 128
]
# llama.cpp multiplies quantised weights with activations rounded to 8 bits per 32-value block (Q8_0/Q8_1),
# F16 weights with activations rounded to float16: the same weights then give logits that differ by
# about 1% of their scale on these two-layer models (measured: KL 1e-4, top-1 97%). That is the whole
# difference for the exact output; requantising (Q4_K_M, Q3_K_M) adds KL 0.017-0.05 and top-1 51-70%.
EXACT_MAX_KL = 1e-3
EXACT_MIN_TOP1 = 0.95
# The bound the measured choice for a permuted act-order branch meets (measured: KL 0.019, Q4_K_S).
ACT_ORDER_MAX_KL = 0.04


def dequantised(tensor: gguf.ReaderTensor) -> np.ndarray:
    return gguf.quants.dequantize(np.asarray(tensor.data), tensor.tensor_type)


def assert_exact_gptq_weights(out: Path, model, block: gguf.GGMLQuantizationType) -> None:
    """Every GPTQ layer of ``out`` is ``block`` and dequantises to exactly the GPTQ weights (Q4_1: up to the
    float16 rounding of m = -s*z); everything else is the checkpoint's own F16/F32 values."""
    _, tensors = read_gguf(out)
    for name, want in expected_tensors(model).items():
        tensor = tensors[name]
        got = dequantised(tensor)
        if want.ndim == 1 or name in ("token_embd.weight", "output.weight"):
            assert tensor.tensor_type in (Q.F32, Q.F16), name
            assert np.array_equal(got, want.astype(np.float16).astype(np.float32) if want.ndim > 1 else want), name
            continue
        assert tensor.tensor_type == block, name
        if block != Q.Q4_1:
            assert np.array_equal(got, want), name  # bit for bit
            continue
        raw = np.asarray(tensor.data).reshape(want.shape[0], -1, 20)
        m = raw[..., 2:4].copy().view(np.float16).astype(np.float32)  # [rows, blocks, 1]
        d = raw[..., 0:2].copy().view(np.float16).astype(np.float32)
        # want = s*q - s*z exactly; the file holds d = s and m = fp16(-s*z): the only rounding is m's.
        error = np.abs(got - want).reshape(want.shape[0], -1, 32)
        assert np.all(error <= np.abs(m) * 2.0**-11 + 1e-12), name
        assert np.all(d > 0), name


@pytest.mark.parametrize(("cfg", "block"), EXACT, ids=[c.id for c, _ in EXACT])
def test_default_output_is_the_gptq_weights(cfg, block, tmp_path, tokenizer_model) -> None:
    model = build_checkpoint(tmp_path / "branch", tokenizer_model, cfg)
    plan = plan_branch(model.folder)
    assert plan.exact and plan.mode == "exact GPTQ weights"
    out = convert_branch(model.folder, quality_tokens=0)
    name = {Q.Q4_0: "Q4_0", Q.Q4_1: "Q4_1", Q.Q8_0: "Q8_0"}[block]
    assert out == tmp_path / f"branch.{name}.gguf"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["branch", out.name]
    # The size said before converting is the tensor data written; only the header (vocabulary) adds to it.
    assert 0 < out.stat().st_size - plan.output_bytes < 32 << 10
    reader, _ = read_gguf(out)
    assert reader.fields["general.file_type"].contents() == getattr(gguf.LlamaFileType, f"MOSTLY_{name}")
    assert_exact_gptq_weights(out, model, block)


@pytest.mark.slow
@pytest.mark.parametrize("cfg", [GptqConfig(4, 128, False, True, "gptq"), GptqConfig(3, 64, False, False, "gptq"),
                                 GptqConfig(4, 32, True, False, "gptq_v2", permuted=False)], ids=lambda c: c.id)
def test_llama_cpp_logits_of_the_exact_output_equal_the_f16_outputs(cfg, tmp_path, tokenizer_model) -> None:
    model = build_checkpoint(tmp_path / "branch", tokenizer_model, cfg)
    result = run_conversion(model.folder, tmp_path / "exact.gguf")
    f16 = convert_branch(model.folder, tmp_path / "f16.gguf", "f16")
    requantised = convert_branch(model.folder, tmp_path / "k.gguf", "q4_k_m" if cfg.bits == 4 else "q3_k_m",
                                 quality_tokens=0)
    tokens, reference = model_logits(str(f16), None, 128, 2)
    _, exact = model_logits(str(result.path), tokens, 128, 2)
    _, again = model_logits(str(requantised), tokens, 128, 2)
    figures, requantised_figures = compare_logits(reference, exact), compare_logits(reference, again)
    assert figures.kl_mean < EXACT_MAX_KL and figures.top1 >= EXACT_MIN_TOP1, figures
    assert np.abs(exact - reference).max() < 0.03 * np.abs(reference).max()
    assert requantised_figures.kl_mean > 10 * figures.kl_mean  # the second quantisation is what exact avoids
    # The conversion's own quality step measured the same thing on its fixed text.
    assert result.quality is not None and result.quality.kl_mean < EXACT_MAX_KL
    assert result.quality.top1 >= EXACT_MIN_TOP1 and result.quality.tokens > 100


def test_contiguity_is_decided_from_g_idx_not_the_desc_act_flag(tmp_path, tokenizer_model) -> None:
    in_order = build_checkpoint(tmp_path / "a", tokenizer_model, GptqConfig(4, 32, True, True, "gptq", permuted=False))
    assert json.loads((in_order.folder / "config.json").read_text())["quantization_config"]["desc_act"] is True
    assert plan_branch(in_order.folder).exact

    permuted = build_checkpoint(tmp_path / "b", tokenizer_model, GptqConfig(4, 32, True, True, "gptq"))
    config = json.loads((permuted.folder / "config.json").read_text())
    config["quantization_config"]["desc_act"] = False  # the flag lies; g_idx tells
    (permuted.folder / "config.json").write_text(json.dumps(config))
    plan = plan_branch(permuted.folder)
    assert not plan.exact and plan.reason == "act-order groups" and plan.out_type is None
    assert plan.candidates == ("q4_k_m", "q4_k_s", "iq4_nl")

    odd = build_checkpoint(tmp_path / "c", tokenizer_model, GptqConfig(4, 16, False, True, "gptq"))
    assert plan_branch(odd.folder).reason == "groups of 16 columns"
    asym8 = build_checkpoint(tmp_path / "d", tokenizer_model, GptqConfig(8, 128, False, False, "gptq"))
    assert plan_branch(asym8.folder).reason == "asymmetric 8-bit zeros"


def test_type_forces_any_llama_cpp_type_and_is_exact_when_it_can_be(tmp_path, tokenizer_model) -> None:
    model = build_checkpoint(tmp_path / "branch", tokenizer_model, GptqConfig(4, 128, False, True, "gptq"))
    q4_0 = run_conversion(model.folder, tmp_path / "a.gguf", "q4_0", quality_tokens=0)
    assert q4_0.mode == "exact GPTQ weights"
    assert q4_0.path.read_bytes() == convert_branch(model.folder, tmp_path / "b.gguf", quality_tokens=0).read_bytes()
    q4_1 = run_conversion(model.folder, tmp_path / "c.gguf", "q4_1", quality_tokens=0)
    assert q4_1.mode == "exact GPTQ weights"
    assert_exact_gptq_weights(q4_1.path, model, Q.Q4_1)
    q5 = run_conversion(model.folder, tmp_path / "d.gguf", "q5_k_m", quality_tokens=0)
    assert q5.mode == "requantised to Q5_K_M (as asked)"
    assert read_gguf(q5.path)[1]["blk.0.attn_q.weight"].tensor_type == Q.Q5_K
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gguf", "b.gguf", "branch", "c.gguf", "d.gguf"]


@pytest.mark.slow
def test_three_bit_size_is_shown_first_with_the_smaller_measured_choice(tmp_path, tokenizer_model, capsys) -> None:
    model = build_checkpoint(tmp_path / "branch", tokenizer_model, GptqConfig(3, 128, False, True, "gptq"),
                             hidden=512, ffn=1024, layers=2)
    plan = plan_branch(model.folder)
    assert plan.exact and plan.output_bytes > plan.branch_bytes
    assert plan.smaller is not None and plan.smaller[0] == "q3_k_m" and plan.smaller[1] < plan.output_bytes

    assert main(["convert", str(model.folder), "--plan"]) == 0
    planned = capsys.readouterr()
    assert planned.out == "" and not (tmp_path / "branch.Q4_0.gguf").exists()
    assert "Mode: exact GPTQ weights" in planned.err
    assert "larger than the branch's" in planned.err and "3-bit values stored in 4-bit blocks" in planned.err
    assert "Smaller choice: --type q3_k_m" in planned.err

    assert main(["convert", str(model.folder)]) == 0
    captured = capsys.readouterr()
    out = Path(captured.out.strip())
    assert out == tmp_path / "branch.Q4_0.gguf"
    conversion = read_conversion(out)
    assert conversion is not None and conversion.mode == "exact GPTQ weights" and conversion.quality is not None
    (alternative,) = conversion.alternatives
    assert alternative.out_type == "q3_k_m" and alternative.size < conversion.size
    assert alternative.quality is not None and alternative.quality.kl_mean > conversion.quality.kl_mean
    assert "Quality against the exact F16 model" in captured.err and "top-1 token agreement" in captured.err
    assert "Smaller choice: Q3_K_M is" in captured.err and "--type q3_k_m" in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["branch", out.name, out.name + ".json"]


@pytest.mark.slow
def test_permuted_act_order_is_requantised_to_the_best_measured_type(tmp_path, tokenizer_model) -> None:
    model = build_checkpoint(tmp_path / "branch", tokenizer_model, GptqConfig(4, 32, True, False, "gptq"))
    conversion = convert_source(ConvertSource(model.folder))
    assert conversion.out_type in ("q4_k_m", "q4_k_s", "iq4_nl")
    assert conversion.path == tmp_path / f"branch.{conversion.out_type.upper()}.gguf"
    assert conversion.mode == f"requantised to {conversion.out_type.upper()} (from act-order groups)"
    assert conversion.quality is not None and conversion.quality.kl_mean < ACT_ORDER_MAX_KL
    measured = {a.out_type: a for a in conversion.alternatives}
    assert set(measured) | {conversion.out_type} == {"q4_k_m", "q4_k_s", "iq4_nl"}
    best = min(a.quality.kl_mean for a in measured.values() if a.quality)
    assert conversion.quality.kl_mean <= best * 1.02  # the lowest, or within the 2% tie that prefers the smaller
    for name in ("Q4_K_M", "Q4_K_S", "IQ4_NL"):
        assert name in conversion.choice
    record = read_conversion(conversion.path)
    assert record is not None and record.choice == conversion.choice and record.quality == conversion.quality
    assert sorted(p.name for p in tmp_path.iterdir()) == ["branch", conversion.path.name,
                                                          conversion.path.name + ".json"]


@pytest.mark.parametrize("stage", ["convert", "reference", "quality"])
def test_cancel_in_any_step_of_an_exact_conversion_leaves_nothing(stage, tmp_path, tokenizer_model) -> None:
    model = build_checkpoint(tmp_path / "branch", tokenizer_model, GptqConfig(4, 128, False, True, "gptq"))
    seen: list[ConvertProgress] = []

    def cancel() -> bool:
        return any(p.stage == stage and p.done < p.total for p in seen) and (stage == "quality" or len(seen) > 3)

    with pytest.raises(ConversionCancelled):
        convert_branch(model.folder, progress=seen.append, cancel=cancel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["branch"]


def test_without_room_for_the_f16_copy_the_exact_file_is_still_written(tmp_path, tokenizer_model,
                                                                        monkeypatch) -> None:
    import shutil
    from collections import namedtuple

    model = build_checkpoint(tmp_path / "branch", tokenizer_model, GptqConfig(4, 128, False, True, "gptq"))
    plan = plan_branch(model.folder)
    usage = namedtuple("usage", "total used free")
    free = plan.output_bytes + (65 << 20)  # the exact file and the 64 MiB margin, not the 2.8 MB F16 copy
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(10**12, 10**12 - free, free))
    conversion = convert_source(ConvertSource(model.folder))
    assert conversion.mode == "exact GPTQ weights" and conversion.quality is None
    assert conversion.quality_note.startswith("the F16 copy it is measured against needs 0.0 GB more disk")
    assert read_conversion(conversion.path) == conversion
    assert sorted(p.name for p in tmp_path.iterdir()) == ["branch", conversion.path.name,
                                                          conversion.path.name + ".json"]
    free = plan.output_bytes  # no room for the file itself: a clear error, nothing left behind
    with pytest.raises(ConvertError, match=r"not enough free disk space .* needs about 0\.\d GB"):
        convert_branch(model.folder, tmp_path / "other.gguf")
    assert not (tmp_path / "other.gguf").exists()


def test_quality_figures_are_kl_from_the_reference_and_top1_agreement() -> None:
    reference = np.array([[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]])
    shifted = compare_logits(reference, reference + 5.0)  # the same distributions
    assert shifted.kl_mean == pytest.approx(0.0, abs=1e-12) and shifted.top1 == 1.0 and shifted.tokens == 2
    other = np.array([[2.0, 1.0, 0.0], [3.0, 0.0, 0.0]])
    p = np.exp(reference[0]) / np.exp(reference[0]).sum()
    q = np.exp(other[0]) / np.exp(other[0]).sum()
    kl = float(np.sum(p * np.log(p / q)))
    figures = compare_logits(reference, other)
    assert figures.kl_mean == pytest.approx(kl / 2) and figures.kl_max == pytest.approx(kl)
    assert figures.top1 == 0.5


def test_catalogue_says_before_converting_which_mode_and_how_large() -> None:
    from app.catalog import load_catalog
    from app.ui.catalog.details import conversion_callout

    catalog = load_catalog()
    callouts = {v.id: conversion_callout(m, v, None) for m, v in catalog.variants() if v.format == "gptq"}
    assert "<b>exact GPTQ weights</b>" in callouts["llama-2-13b-chat:gptq:main"]
    assert "<b>exact GPTQ weights</b>" in callouts["stablebeluga2-70b:gptq:main"]  # act order without groups
    three = callouts["stablebeluga2-70b:gptq:gptq-3bit-128g-actorder_False"]
    assert "<b>exact GPTQ weights</b>" in three and "larger than the branch" in three and "--type q3_k_m" in three
    act = callouts["mistral-7b-openorca:gptq:gptq-4bit-32g-actorder_True"]
    assert "activation order" in act and "Q4_K_M, Q4_K_S, IQ4_NL" in act
