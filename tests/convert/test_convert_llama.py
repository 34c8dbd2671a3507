"""Convert tiny GPTQ llama branches and check the GGUF in llama.cpp: exact tensors, logits, tokenisation, metadata."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import gguf
import numpy as np
import pytest
import sentencepiece as spm

from app.catalog import load_catalog
from app.convert import convert_branch
from app.convert.checkpoint import GptqBranch
from app.convert.gptq import GptqSettings
from tests.convert.tiny_gptq import CHAT_TEMPLATE, GptqConfig, build_checkpoint, reference_logits

GGUF_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
              "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}

# A representative subset of the configuration matrix (the full one runs on the packer in test_gptq_packing).
CONFIGS = [
    GptqConfig(4, 128, False, True, "gptq"),
    GptqConfig(4, 32, True, False, "gptq_v2"),
    GptqConfig(3, 64, True, False, "gptq"),
    GptqConfig(3, -1, False, True, "gptq_v2"),
    GptqConfig(8, 128, True, True, "gptq"),
    GptqConfig(8, -1, False, False, "gptq_v2"),
]
PROMPT = "The quick brown fox jumps over the lazy dog."
# llama.cpp's CPU path rounds activations and the KV cache to float16 (unit roundoff 2**-11 ~ 4.9e-4) for
# each of the ~8 F16 matrix products per layer; over two layers that compounds to about 1e-3 of the logits'
# scale (measured: ~1e-3). 1% of the largest logit leaves room for that and stays far below what a wrong
# zero-point convention, group map or Q/K permutation gives (tested below: more than 5% of the scale).
LOGIT_TOLERANCE = 0.01


def permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf.py's LlamaModel.permute, verbatim in numpy."""
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def expected_tensors(model) -> dict[str, np.ndarray]:
    """Every tensor of the GGUF as float32, in GGUF names and llama.cpp's Q/K row order."""
    c = model.config
    out = {"token_embd.weight": model.weights["model.embed_tokens.weight"],
           "output_norm.weight": model.weights["model.norm.weight"]}
    if "lm_head.weight" in model.weights:
        out["output.weight"] = model.weights["lm_head.weight"]
    for layer in range(c["num_hidden_layers"]):
        for hf, short in GGUF_NAMES.items():
            w = model.weights[f"model.layers.{layer}.{hf}.weight"]
            if hf == "self_attn.q_proj":
                w = permute(w, c["num_attention_heads"])
            elif hf == "self_attn.k_proj":
                w = permute(w, c["num_key_value_heads"])
            out[f"blk.{layer}.{short}.weight"] = w
    return out


def read_gguf(path: Path) -> tuple[gguf.GGUFReader, dict[str, gguf.ReaderTensor]]:
    reader = gguf.GGUFReader(path)
    return reader, {t.name: t for t in reader.tensors}


def field_value(reader: gguf.GGUFReader, key: str):
    return reader.fields[key].contents()


def llama_logits(load_llama, path: Path, text: str) -> tuple[list[int], np.ndarray]:
    llm = load_llama(path)
    tokens = llm.tokenize(text.encode(), add_bos=True)
    llm.eval(tokens)
    return tokens, np.array(llm.scores[: len(tokens)], dtype=np.float64)


def assert_logits_close(got: np.ndarray, want: np.ndarray, tolerance: float = LOGIT_TOLERANCE) -> None:
    error = np.abs(got - want).max() / np.abs(want).max()
    assert error < tolerance, f"logits differ by {error:.2%} of their scale"


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.id)
def test_f16_tensors_are_exact_and_llama_cpp_logits_match(cfg, tmp_path, tokenizer_model, load_llama) -> None:
    model = build_checkpoint(tmp_path / "branch", tokenizer_model, cfg)
    out = convert_branch(model.folder, tmp_path / "tiny.gguf", "f16")
    assert out == tmp_path / "tiny.gguf"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["branch", "tiny.gguf"]

    _, tensors = read_gguf(out)
    expected = expected_tensors(model)
    assert set(tensors) == set(expected)
    for name, want in expected.items():
        got = np.asarray(tensors[name].data)
        if want.ndim == 1:
            assert tensors[name].tensor_type == gguf.GGMLQuantizationType.F32
            assert np.array_equal(got, want), name
        else:
            assert tensors[name].tensor_type == gguf.GGMLQuantizationType.F16
            assert np.array_equal(got.view(np.uint16), want.astype(np.float16).view(np.uint16)), name

    tokens, logits = llama_logits(load_llama, out, PROMPT)
    f16_weights = {k: v.astype(np.float16).astype(np.float32) for k, v in model.weights.items()}
    assert_logits_close(logits, reference_logits(model, tokens, f16_weights))


def test_wrong_conventions_would_be_caught(tmp_path, tokenizer_model, load_llama) -> None:
    """The logit tolerance is tight enough to see a wrong zero-point convention, a lost act order or unpermuted Q/K."""
    cfg = GptqConfig(4, 32, True, False, "gptq")
    model = build_checkpoint(tmp_path / "branch", tokenizer_model, cfg)
    tokens, logits = llama_logits(load_llama, convert_branch(model.folder, tmp_path / "t.gguf", "f16"), PROMPT)

    def error_with(mistake) -> float:
        weights = dict(model.weights)
        branch = GptqBranch(model.folder)
        for tensor in branch.plan:
            if tensor.quantised:
                layer = branch.linear(tensor)
                weights[tensor.hf_name] = mistake(layer).dequantise()
        branch.close()
        return float(np.abs(reference_logits(model, tokens, weights) - logits).max() / np.abs(logits).max())

    assert error_with(lambda layer: layer) < LOGIT_TOLERANCE  # the right reading, through the same path
    as_v2 = replace(model_settings(cfg), checkpoint_format="gptq_v2")
    assert error_with(lambda layer: replace(layer, settings=as_v2)) > 5 * LOGIT_TOLERANCE
    assert error_with(lambda layer: replace(layer, g_idx=np.arange(layer.in_features) // 32)) > 5 * LOGIT_TOLERANCE
    unpermuted = dict(model.weights)
    q = "model.layers.0.self_attn.q_proj.weight"
    unpermuted[q] = permute(model.weights[q], 4)
    assert np.abs(reference_logits(model, tokens, unpermuted) - logits).max() / np.abs(logits).max() > \
        5 * LOGIT_TOLERANCE


def model_settings(cfg: GptqConfig) -> GptqSettings:
    return GptqSettings(cfg.bits, cfg.group_size, cfg.desc_act, cfg.sym, cfg.checkpoint_format)


def test_q8_0_written_directly(tmp_path, tokenizer_model, load_llama) -> None:
    model = build_checkpoint(tmp_path / "branch", tokenizer_model, GptqConfig(8, 64, True, False, "gptq_v2"))
    out = convert_branch(model.folder, out_type="q8_0")
    assert out == tmp_path / "branch.Q8_0.gguf"
    reader, tensors = read_gguf(out)
    assert field_value(reader, "general.file_type") == gguf.LlamaFileType.MOSTLY_Q8_0
    for name, want in expected_tensors(model).items():
        if want.ndim == 2:
            assert tensors[name].tensor_type == gguf.GGMLQuantizationType.Q8_0
            reference = gguf.quants.quantize(want, gguf.GGMLQuantizationType.Q8_0)
            assert np.array_equal(np.asarray(tensors[name].data), reference), name
    tokens, logits = llama_logits(load_llama, out, PROMPT)
    # Q8_0 rounds each weight to 1/127 of its block's largest: ~0.4% per weight, ~3% on the logits at most.
    assert_logits_close(logits, reference_logits(model, tokens), tolerance=0.05)


@pytest.mark.parametrize(("bits", "ftype", "k_type", "max_weight_error", "min_cosine"), [
    # A K-quant of Gaussian weights has a relative RMS error of about 6.5% at Q4_K and 13% at Q3_K (measured
    # here: at most 7.2% and 15.1%, the token embedding being the worst); the thresholds sit ~1.2x above, and a
    # dequantisation mistake (a wrong zero, a lost g_idx) gives errors of 30% to well over 100%. The logits
    # of two random layers then keep cosine 0.977 (Q4_K_M) and 0.937 (Q3_K_M) with the GPTQ reference.
    (4, gguf.LlamaFileType.MOSTLY_Q4_K_M, gguf.GGMLQuantizationType.Q4_K, 0.09, 0.95),
    (3, gguf.LlamaFileType.MOSTLY_Q3_K_M, gguf.GGMLQuantizationType.Q3_K, 0.18, 0.90),
])
def test_requantised_by_llama_cpp_to_the_nearest_k_quant(bits, ftype, k_type, max_weight_error, min_cosine,
                                                         tmp_path, tokenizer_model, load_llama) -> None:
    model = build_checkpoint(tmp_path / "branch", tokenizer_model, GptqConfig(bits, 128, False, True, "gptq"))
    seen = []
    kind = "q4_k_m" if bits == 4 else "q3_k_m"  # asked for: by default these branches convert exactly
    out = convert_branch(model.folder, out_type=kind, progress=seen.append, quality_tokens=0)
    assert out.name == f"branch.{kind.upper()}.gguf"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["branch", out.name]
    assert [p.stage for p in seen][-2:] == ["requantize", "requantize"]
    reader, tensors = read_gguf(out)
    assert field_value(reader, "general.file_type") == ftype
    assert field_value(reader, "tokenizer.chat_template") == CHAT_TEMPLATE
    assert tensors["blk.0.attn_q.weight"].tensor_type == k_type
    # The requantised weights are the GPTQ weights rounded once more: measure that rounding per tensor.
    for name, want in expected_tensors(model).items():
        if want.ndim == 2:
            got = gguf.quants.dequantize(np.asarray(tensors[name].data), tensors[name].tensor_type)
            error = np.sqrt(np.mean((got - want) ** 2) / np.mean(want**2))
            assert error < max_weight_error, (name, error)
    tokens, logits = llama_logits(load_llama, out, PROMPT)
    want = reference_logits(model, tokens)
    cosine = np.sum(logits * want) / np.linalg.norm(logits) / np.linalg.norm(want)
    assert cosine > min_cosine


def test_tokenisation_matches_sentencepiece(tmp_path, tokenizer_model, load_llama) -> None:
    model = build_checkpoint(tmp_path / "branch", tokenizer_model, GptqConfig())
    out = convert_branch(model.folder, tmp_path / "t.gguf", "f16")
    sp = spm.SentencePieceProcessor(model_proto=tokenizer_model)
    llm = load_llama(out, vocab_only=True)
    texts = [PROMPT, "Hearth turns GPTQ branches into GGUF files.", "  two  spaces and\nnew lines\n",
             "Café naïve résumé", "日本語 and emoji 🔥", "12345 @ # % &", "unseenwordsXYZ"]
    for text in texts:
        assert llm.tokenize(text.encode(), add_bos=False) == sp.encode(text), text
    assert llm.tokenize(b"hi", add_bos=True)[0] == sp.bos_id() == llm.token_bos()
    assert llm.token_eos() == sp.eos_id()


def test_tokenizer_json_only_branch(tmp_path, tokenizer_model, load_llama) -> None:
    """A Llama-2-style tokenizer.json (BPE with byte fallback) stands in for tokenizer.model."""
    model = build_checkpoint(tmp_path / "branch", tokenizer_model, GptqConfig())
    sp = spm.SentencePieceProcessor(model_proto=tokenizer_model)
    (model.folder / "tokenizer.model").unlink()
    special = [{"id": i, "content": sp.id_to_piece(i), "special": True} for i in range(3)]
    (model.folder / "tokenizer.json").write_text(json.dumps({
        "added_tokens": special,
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                           {"type": "Replace", "pattern": {"String": " "},
                                                            "content": "▁"}]},
        "decoder": {"type": "Sequence", "decoders": []},
        "model": {"type": "BPE", "byte_fallback": True, "unk_token": "<unk>",
                  "vocab": {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}, "merges": []}}))
    out = convert_branch(model.folder, tmp_path / "t.gguf", "f16")
    llm = load_llama(out, vocab_only=True)
    for text in (PROMPT, "Café naïve résumé", "unseenwordsXYZ 42"):
        assert llm.tokenize(text.encode(), add_bos=False) == sp.encode(text), text


def test_metadata_and_catalogue_template(tmp_path, tokenizer_model) -> None:
    model = build_checkpoint(tmp_path / "branch", tokenizer_model, GptqConfig(4, 64, True, False, "gptq"),
                             shards=2, quantization_in_config=False, tied=True)
    out = convert_branch(model.folder, tmp_path / "t.gguf", "f16", template="chatml")
    reader, tensors = read_gguf(out)
    c = model.config
    assert field_value(reader, "general.architecture") == "llama"
    assert field_value(reader, "llama.context_length") == c["max_position_embeddings"]
    assert field_value(reader, "llama.embedding_length") == c["hidden_size"]
    assert field_value(reader, "llama.block_count") == c["num_hidden_layers"]
    assert field_value(reader, "llama.attention.head_count") == c["num_attention_heads"]
    assert field_value(reader, "llama.attention.head_count_kv") == c["num_key_value_heads"]
    assert field_value(reader, "llama.rope.freq_base") == c["rope_theta"]
    assert field_value(reader, "llama.attention.layer_norm_rms_epsilon") == pytest.approx(c["rms_norm_eps"])
    assert field_value(reader, "tokenizer.ggml.bos_token_id") == 1
    assert field_value(reader, "tokenizer.ggml.eos_token_id") == 2
    assert field_value(reader, "tokenizer.chat_template") == load_catalog().templates["chatml"].jinja
    assert "output.weight" not in tensors  # tied embeddings: llama.cpp reuses token_embd
    assert len(field_value(reader, "tokenizer.ggml.tokens")) == c["vocab_size"]


def test_linear_rope_scaling_and_mistral(tmp_path, tokenizer_model, load_llama) -> None:
    model = build_checkpoint(tmp_path / "branch", tokenizer_model, GptqConfig())
    config = json.loads((model.folder / "config.json").read_text())
    config.update(architectures=["MistralForCausalLM"], model_type="mistral", sliding_window=4096,
                  rope_scaling={"type": "linear", "factor": 2.0})
    (model.folder / "config.json").write_text(json.dumps(config))
    out = convert_branch(model.folder, tmp_path / "t.gguf", "f16")
    reader, _ = read_gguf(out)
    assert field_value(reader, "llama.rope.scaling.type") == "linear"
    assert field_value(reader, "llama.rope.scaling.factor") == 2.0
    assert load_llama(out).n_vocab() == 400
