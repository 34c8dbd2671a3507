"""Build tiny random llama checkpoints in GPTQ format (our own round-to-nearest packer) for the converter tests."""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SENTENCES = """The quick brown fox jumps over the lazy dog.
Hearth turns GPTQ branches into GGUF files for llama.cpp.
Local models answer questions without sending anything to a server.
A small tokenizer is trained on a handful of sentences for the tests.
Numbers like 12345 and symbols such as @ # % & appear too.
Café, naïve, résumé: accented words use byte fallback when needed.""".splitlines()

CHAT_TEMPLATE = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"


def train_tokenizer() -> bytes:
    """A byte-fallback BPE SentencePiece model (the Llama 2 kind) trained on a few sentences."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES * 20), model_writer=model, vocab_size=400, model_type="bpe",
        byte_fallback=True, hard_vocab_limit=False, character_coverage=1.0, minloglevel=2,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        # as Llama's tokenizer.model: no NFKC, spaces kept as they are (llama.cpp does not normalise)
        normalization_rule_name="identity", remove_extra_whitespaces=False)
    return model.getvalue()


@dataclass(frozen=True)
class GptqConfig:
    bits: int = 4
    group_size: int = 128
    desc_act: bool = False
    sym: bool = True
    checkpoint_format: str = "gptq"
    # Act order as AutoGPTQ writes it permutes the columns' groups; False keeps g_idx == i // group_size
    # even with desc_act (what AutoGPTQ writes when static groups are on, and what a no-op act order gives).
    permuted: bool = True

    @property
    def id(self) -> str:
        act = ("act" if self.permuted else "act-inorder") if self.desc_act else "noact"
        return f"{self.bits}b-g{self.group_size}-{act}-{'sym' if self.sym else 'asym'}-{self.checkpoint_format}"


@dataclass
class PackedLinear:
    qweight: np.ndarray
    qzeros: np.ndarray
    scales: np.ndarray
    g_idx: np.ndarray
    q: np.ndarray  # [in, out] integer codes
    zeros: np.ndarray  # [groups, out] true zero points


def pack_values(values: np.ndarray, bits: int, axis: int) -> np.ndarray:
    """Pack unsigned ``bits``-wide values along ``axis`` into int32 words, 32 values per ``bits`` words."""
    moved = np.moveaxis(values.astype(np.uint64), axis, -1)
    n = moved.shape[-1]
    assert n % 32 == 0
    blocks = moved.reshape(*moved.shape[:-1], n // 32, 32)
    words = np.zeros((*blocks.shape[:-1], bits), dtype=np.uint64)
    for j in range(32):
        word, shift = divmod(j * bits, 32)
        words[..., word] |= (blocks[..., j] << np.uint64(shift)) & np.uint64(0xFFFFFFFF)
        if shift + bits > 32:
            words[..., word + 1] |= blocks[..., j] >> np.uint64(32 - shift)
    packed = words.astype(np.uint32).reshape(*moved.shape[:-1], n // 32 * bits).view(np.int32)
    return np.moveaxis(packed, -1, axis)


def quantise(weight: np.ndarray, cfg: GptqConfig, rng: np.random.Generator) -> PackedLinear:
    """Round-to-nearest GPTQ quantisation of ``weight`` [out, in] into the packed tensors."""
    out_features, in_features = weight.shape
    maxq = (1 << cfg.bits) - 1
    size = cfg.group_size if cfg.group_size > 0 else in_features
    order = rng.permutation(in_features) if cfg.desc_act and cfg.permuted else np.arange(in_features)
    g_idx = np.empty(in_features, dtype=np.int32)
    g_idx[order] = np.arange(in_features) // size
    groups = int(g_idx.max()) + 1
    w = weight.T.astype(np.float32)  # [in, out]
    scales = np.empty((groups, out_features), dtype=np.float16)
    zeros = np.empty((groups, out_features), dtype=np.int64)
    for g in range(groups):
        block = w[g_idx == g]
        lo, hi = np.minimum(block.min(0), 0), np.maximum(block.max(0), 0)
        if cfg.sym:
            scale = np.maximum(np.abs(lo), hi) * 2 / maxq
            zero = np.full(out_features, (maxq + 1) // 2)
        else:
            scale = (hi - lo) / maxq
            # v1 stores zero-1, so a zero of 0 cannot be stored (the AutoGPTQ v1 quirk gptq_v2 fixed).
            zero = np.clip(np.round(-lo / np.maximum(scale, 1e-8)), 1 if cfg.checkpoint_format == "gptq" else 0, maxq)
        scales[g] = np.maximum(scale, 1e-6).astype(np.float16)
        zeros[g] = zero
    s = scales.astype(np.float32)[g_idx]
    q = np.clip(np.round(w / s + zeros[g_idx]), 0, maxq).astype(np.int64)
    stored = zeros - (1 if cfg.checkpoint_format == "gptq" else 0)
    return PackedLinear(qweight=pack_values(q, cfg.bits, 0), qzeros=pack_values(stored, cfg.bits, 1),
                        scales=scales, g_idx=g_idx, q=q, zeros=zeros)


def reference_dequantise(packed: PackedLinear) -> np.ndarray:
    """The plain formula W = scales[g_idx] * (q - zeros[g_idx]), as [out, in] float32."""
    w = packed.scales.astype(np.float64)[packed.g_idx] * (packed.q - packed.zeros[packed.g_idx])
    return w.T.astype(np.float32)


_ST_DTYPES = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32", np.dtype(np.int32): "I32"}


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, array in tensors.items():
        header[name] = {"dtype": _ST_DTYPES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        for array in tensors.values():
            handle.write(np.ascontiguousarray(array).tobytes())


@dataclass
class TinyLlama:
    """A written checkpoint and the float weights (dequantised where GPTQ) a reference forward pass uses."""

    folder: Path
    config: dict
    gptq: GptqConfig
    weights: dict[str, np.ndarray] = field(default_factory=dict)


PROJECTIONS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def build_checkpoint(folder: Path, tokenizer_model: bytes, gptq: GptqConfig, *, hidden: int = 256,
                     n_head: int = 4, n_kv: int = 2, ffn: int = 512, layers: int = 2, seed: int = 0,
                     shards: int = 1, quantization_in_config: bool = True, tied: bool = False) -> TinyLlama:
    """Write a tiny llama GPTQ branch into ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    head_dim = hidden // n_head
    n_vocab = 400
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
        "intermediate_size": ffn, "num_attention_heads": n_head, "num_key_value_heads": n_kv,
        "num_hidden_layers": layers, "vocab_size": n_vocab, "max_position_embeddings": 512,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": tied,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float16", "_name_or_path": "tiny/tiny-llama",
    }
    quant = {"bits": gptq.bits, "group_size": gptq.group_size, "desc_act": gptq.desc_act, "sym": gptq.sym,
             "checkpoint_format": gptq.checkpoint_format, "quant_method": "gptq"}
    if quantization_in_config:
        config["quantization_config"] = quant
    else:
        (folder / "quantize_config.json").write_text(json.dumps(quant))
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    shapes = {"self_attn.q_proj": (n_head * head_dim, hidden), "self_attn.k_proj": (n_kv * head_dim, hidden),
              "self_attn.v_proj": (n_kv * head_dim, hidden), "self_attn.o_proj": (hidden, n_head * head_dim),
              "mlp.gate_proj": (ffn, hidden), "mlp.up_proj": (ffn, hidden), "mlp.down_proj": (hidden, ffn)}
    tensors: dict[str, np.ndarray] = {}
    model = TinyLlama(folder, config, gptq)
    embed = (rng.standard_normal((n_vocab, hidden)) * 0.5).astype(np.float16)
    tensors["model.embed_tokens.weight"] = embed
    model.weights["model.embed_tokens.weight"] = embed.astype(np.float32)
    for layer in range(layers):
        prefix = f"model.layers.{layer}."
        for norm in ("input_layernorm", "post_attention_layernorm"):
            w = (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float16)
            tensors[prefix + norm + ".weight"] = w
            model.weights[prefix + norm + ".weight"] = w.astype(np.float32)
        for proj in PROJECTIONS:
            out_f, in_f = shapes[proj]
            weight = rng.standard_normal((out_f, in_f)).astype(np.float32) / np.sqrt(in_f)
            packed = quantise(weight, gptq, rng)
            base = prefix + proj
            tensors.update({base + ".qweight": packed.qweight, base + ".qzeros": packed.qzeros,
                            base + ".scales": packed.scales, base + ".g_idx": packed.g_idx})
            model.weights[base + ".weight"] = reference_dequantise(packed)
    norm = (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float16)
    tensors["model.norm.weight"] = norm
    model.weights["model.norm.weight"] = norm.astype(np.float32)
    if not tied:
        head = (rng.standard_normal((n_vocab, hidden)) / np.sqrt(hidden)).astype(np.float16)
        tensors["lm_head.weight"] = head
        model.weights["lm_head.weight"] = head.astype(np.float32)
    _write_shards(folder, tensors, shards)
    _write_tokenizer(folder, tokenizer_model)
    return model


def _write_shards(folder: Path, tensors: dict[str, np.ndarray], shards: int) -> None:
    if shards == 1:
        write_safetensors(folder / "model.safetensors", tensors)
        return
    names = list(tensors)
    weight_map = {}
    for index in range(shards):
        part = names[index::shards]
        file = f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors(folder / file, {name: tensors[name] for name in part})
        weight_map.update(dict.fromkeys(part, file))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def _write_tokenizer(folder: Path, tokenizer_model: bytes) -> None:
    (folder / "tokenizer.model").write_bytes(tokenizer_model)
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "chat_template": CHAT_TEMPLATE,
        "added_tokens_decoder": {"0": {"content": "<unk>", "special": True},
                                 "1": {"content": "<s>", "special": True},
                                 "2": {"content": "</s>", "special": True}}}))
    (folder / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}))
    (folder / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}))


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rope(x: np.ndarray, theta: float) -> np.ndarray:
    """Hugging Face's rotate-half RoPE on [tokens, heads, head_dim]."""
    tokens, _, dim = x.shape
    inv_freq = theta ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
    angles = np.outer(np.arange(tokens), inv_freq)
    cos = np.concatenate([np.cos(angles)] * 2, axis=-1)[:, None, :]
    sin = np.concatenate([np.sin(angles)] * 2, axis=-1)[:, None, :]
    half = dim // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


def reference_logits(model: TinyLlama, tokens: list[int], weights: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Logits [tokens, vocab] of a float64 numpy llama forward pass (RMSNorm, RoPE, GQA attention, SwiGLU)."""
    w = {k: v.astype(np.float64) for k, v in (weights or model.weights).items()}
    c = model.config
    n_head, n_kv, eps = c["num_attention_heads"], c["num_key_value_heads"], c["rms_norm_eps"]
    head_dim = c["hidden_size"] // n_head
    x = w["model.embed_tokens.weight"][tokens]
    t = len(tokens)
    mask = np.triu(np.full((t, t), -np.inf), 1)
    for layer in range(c["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = rope((h @ w[p + "self_attn.q_proj.weight"].T).reshape(t, n_head, head_dim), c["rope_theta"])
        k = rope((h @ w[p + "self_attn.k_proj.weight"].T).reshape(t, n_kv, head_dim), c["rope_theta"])
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(t, n_kv, head_dim)
        k, v = np.repeat(k, n_head // n_kv, axis=1), np.repeat(v, n_head // n_kv, axis=1)
        scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(head_dim) + mask
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        attn = np.einsum("hqk,khd->qhd", probs, v).reshape(t, n_head * head_dim)
        x = x + attn @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + ((gate / (1 + np.exp(-gate))) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ head.T
