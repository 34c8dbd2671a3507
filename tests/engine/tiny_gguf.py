"""Write tiny llama-architecture GGUF files for tests: random weights, a byte-level SentencePiece vocabulary."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

SPECIALS = ("<unk>", "<s>", "</s>")
CHATML_SPECIALS = ("<|im_start|>", "<|im_end|>")
# A handful of whole-word pieces so that ordinary text does not tokenize to bytes only.
WORDS = ("▁the", "▁is", "▁of", "▁and", "▁to", "▁in", "▁you", "▁hello", "▁world", "▁user")


def sentencepiece_vocab(extra_specials: tuple[str, ...] = ()) -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and types: specials, the 256 byte tokens, letters and a few words."""
    tokens: list[str] = []
    scores: list[float] = []
    types: list[int] = []

    def add(text: str, score: float, kind: gguf.TokenType) -> None:
        tokens.append(text)
        scores.append(score)
        types.append(int(kind))

    add(SPECIALS[0], 0.0, gguf.TokenType.UNKNOWN)
    for special in (*SPECIALS[1:], *extra_specials):
        add(special, 0.0, gguf.TokenType.CONTROL)
    for byte in range(256):
        add(f"<0x{byte:02X}>", 0.0, gguf.TokenType.BYTE)
    for index, letter in enumerate("abcdefghijklmnopqrstuvwxyz"):
        add(letter, -1.0 - index / 100, gguf.TokenType.NORMAL)
        add("▁" + letter, -1.5 - index / 100, gguf.TokenType.NORMAL)
    for index, word in enumerate(WORDS):
        add(word, -0.5 - index / 100, gguf.TokenType.NORMAL)
    add("▁", -2.0, gguf.TokenType.NORMAL)
    return tokens, scores, types


def write_tiny_gguf(
    path: Path,
    *,
    chat_template: str | None = None,
    chatml_specials: bool = False,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 128,
    context_length: int = 512,
    name: str = "Tiny Test Model",
    wrong_shape: bool = False,
    duplicate_token: bool = False,
    seed: int = 0,
) -> Path:
    """Write a loadable llama GGUF of a few hundred kB and return its path.

    ``wrong_shape`` makes one attention tensor the wrong size, which llama.cpp rejects on
    load with an error. ``duplicate_token`` repeats a vocabulary entry, which llama.cpp
    0.3.x does not check gracefully: it fails a GGML_ASSERT and aborts the whole process.
    """
    rng = np.random.default_rng(seed)
    tokens, scores, types = sentencepiece_vocab(CHATML_SPECIALS if chatml_specials else ())
    if duplicate_token:
        tokens[-1] = tokens[-2]
    n_vocab = len(tokens)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(context_length)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    if chat_template is not None:
        writer.add_chat_template(chat_template)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    head_dim = n_embd // n_head
    writer.add_tensor("token_embd.weight", weight(n_vocab, n_embd))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", weight(n_vocab, n_embd))
    for layer in range(n_layer):
        prefix = f"blk.{layer}."
        q_rows = n_embd + (8 if wrong_shape and layer == 0 else 0)
        writer.add_tensor(prefix + "attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(prefix + "attn_q.weight", weight(q_rows, n_embd))
        writer.add_tensor(prefix + "attn_k.weight", weight(n_head_kv * head_dim, n_embd))
        writer.add_tensor(prefix + "attn_v.weight", weight(n_head_kv * head_dim, n_embd))
        writer.add_tensor(prefix + "attn_output.weight", weight(n_embd, n_embd))
        writer.add_tensor(prefix + "ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(prefix + "ffn_gate.weight", weight(n_ff, n_embd))
        writer.add_tensor(prefix + "ffn_up.weight", weight(n_ff, n_embd))
        writer.add_tensor(prefix + "ffn_down.weight", weight(n_embd, n_ff))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_big_vocab_gguf(path: Path, n_vocab: int = 151_936) -> Path:
    """A header-heavy GGUF like Qwen's: a BPE vocabulary of ``n_vocab`` tokens plus merges.

    Only the header matters (for the metadata benchmark); the weights are a token
    embedding of width 8 in F16.
    """
    rng = np.random.default_rng(1)
    tokens = [f"tok{index}_{'x' * (index % 9)}" for index in range(n_vocab - 3)]
    tokens += ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    merges = [f"t{index % 977} o{index % 131}k" for index in range(n_vocab - 500)]
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_name("Big Vocab Header Test")
    writer.add_context_length(32768)
    writer.add_embedding_length(8)
    writer.add_block_count(1)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([int(gguf.TokenType.NORMAL)] * n_vocab)
    writer.add_token_merges(merges)
    writer.add_eos_token_id(n_vocab - 1)
    writer.add_bos_token_id(n_vocab - 3)
    writer.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    writer.add_tensor("token_embd.weight", rng.standard_normal((n_vocab, 8)).astype(np.float16))
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _random_q4_0(rng: np.random.Generator, rows: int, cols: int, scale: float) -> np.ndarray:
    """Random Q4_0 blocks as raw bytes: per 32 weights an f16 scale and 16 bytes of 4-bit values."""
    blocks = np.frombuffer(rng.bytes(rows * (cols // 32) * 18), dtype=np.uint8).reshape(rows, cols // 32, 18).copy()
    blocks[:, :, 0:2] = np.frombuffer(np.float16(scale).tobytes(), dtype=np.uint8)
    return blocks.reshape(rows, (cols // 32) * 18)


def write_synthetic_llama(
    path: Path,
    *,
    n_layer: int = 22,
    n_embd: int = 2048,
    n_ff: int = 5632,
    n_head: int = 32,
    n_head_kv: int = 4,
    n_vocab: int = 32000,
    context_length: int = 4096,
    name: str = "Synthetic Llama 1.1B Q4_0",
) -> Path:
    """A TinyLlama-shaped llama (about 1.1B parameters) with random Q4_0 weights, for benchmarks.

    The weights are random, so the text is nonsense, but every matrix has the size and type of a
    real 1B model: decode speed is what a real one would give. Layers share their random buffers
    (same work per token, a fraction of the time and memory to write).
    """
    rng = np.random.default_rng(11)
    tokens, scores, types = sentencepiece_vocab(CHATML_SPECIALS)
    for index in range(n_vocab - len(tokens)):
        tokens.append(f"▁w{index}")
        scores.append(-3.0 - index / n_vocab)
        types.append(int(gguf.TokenType.NORMAL))
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(context_length)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    q4 = gguf.GGMLQuantizationType.Q4_0
    kv = n_head_kv * (n_embd // n_head)
    square = _random_q4_0(rng, n_embd, n_embd, 0.002)
    narrow = _random_q4_0(rng, kv, n_embd, 0.002)
    wide_in = _random_q4_0(rng, n_ff, n_embd, 0.002)
    wide_out = _random_q4_0(rng, n_embd, n_ff, 0.0015)
    ones = np.ones(n_embd, dtype=np.float32)
    writer.add_tensor("token_embd.weight", _random_q4_0(rng, n_vocab, n_embd, 0.01), raw_dtype=q4)
    writer.add_tensor("output_norm.weight", ones)
    writer.add_tensor("output.weight", _random_q4_0(rng, n_vocab, n_embd, 0.002), raw_dtype=q4)
    for layer in range(n_layer):
        prefix = f"blk.{layer}."
        writer.add_tensor(prefix + "attn_norm.weight", ones)
        writer.add_tensor(prefix + "attn_q.weight", square, raw_dtype=q4)
        writer.add_tensor(prefix + "attn_k.weight", narrow, raw_dtype=q4)
        writer.add_tensor(prefix + "attn_v.weight", narrow, raw_dtype=q4)
        writer.add_tensor(prefix + "attn_output.weight", square, raw_dtype=q4)
        writer.add_tensor(prefix + "ffn_norm.weight", ones)
        writer.add_tensor(prefix + "ffn_gate.weight", wide_in, raw_dtype=q4)
        writer.add_tensor(prefix + "ffn_up.weight", wide_in, raw_dtype=q4)
        writer.add_tensor(prefix + "ffn_down.weight", wide_out, raw_dtype=q4)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
