"""The fast GGUF header reader agrees with gguf's GGUFReader and refuses bad files clearly."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest

from app.formats.gguf_meta import GGUFError, GGUFTruncatedError, read_gguf_metadata
from tests.engine.tiny_gguf import write_big_vocab_gguf, write_tiny_gguf


def _field(reader: gguf.GGUFReader, key: str) -> object:
    return reader.fields[key].contents()


@pytest.mark.slow
def test_smollm2_metadata_matches_gguf_reader(smollm2: Path) -> None:
    meta = read_gguf_metadata(smollm2)
    reader = gguf.GGUFReader(smollm2)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    assert meta.architecture == _field(reader, "general.architecture") == "llama"
    assert meta.name == _field(reader, "general.name")
    assert meta.context_length == _field(reader, "llama.context_length") == 8192
    assert meta.block_count == 30 and meta.embedding_length == 576
    assert (meta.head_count, meta.head_count_kv) == (9, 3)
    assert meta.quant == "Q4_1"
    assert meta.chat_template == _field(reader, "tokenizer.chat_template")
    assert meta.bos_token_id == _field(reader, "tokenizer.ggml.bos_token_id")
    assert meta.eos_token_id == _field(reader, "tokenizer.ggml.eos_token_id")
    assert meta.bos_token == tokens[meta.bos_token_id] == "<|im_start|>"
    assert meta.eos_token == tokens[meta.eos_token_id] == "<|im_end|>"
    assert meta.vocab_size == len(tokens)
    assert len(meta.tensors) == len(reader.tensors)
    for ours, theirs in zip(meta.tensors, reader.tensors, strict=True):
        assert ours.name == theirs.name
        assert ours.shape == tuple(int(d) for d in theirs.shape)
        assert ours.type_name == theirs.tensor_type.name
        assert ours.n_bytes == theirs.n_bytes
    assert meta.tensor_bytes == sum(int(t.n_bytes) for t in reader.tensors)
    assert sum(meta.layer_bytes()) + sum(meta.non_layer_bytes()) == meta.tensor_bytes


def test_big_vocabulary_specials_read_correctly(tmp_path: Path) -> None:
    path = write_big_vocab_gguf(tmp_path / "big.gguf", n_vocab=20_000)
    meta = read_gguf_metadata(path)
    assert meta.vocab_size == 20_000
    assert (meta.bos_token, meta.eos_token) == ("<|endoftext|>", "<|im_end|>")
    assert meta.architecture == "qwen2" and meta.quant == "F16"
    assert meta.chat_template is not None


def test_tiny_model_reads_and_per_layer_bytes_add_up(tmp_path: Path) -> None:
    meta = read_gguf_metadata(write_tiny_gguf(tmp_path / "tiny.gguf"))
    assert meta.block_count == 2 and meta.head_count_kv == 2 and meta.head_dim_k == 16
    assert meta.bos_token == "<s>" and meta.eos_token == "</s>" and meta.add_bos_token is True
    assert meta.chat_template is None
    per_layer = 4 * (64 + 64 * 64 * 2 + 32 * 64 * 2 + 64 + 128 * 64 * 3)
    assert meta.layer_bytes() == [per_layer, per_layer]
    input_side, output_side = meta.non_layer_bytes()
    assert output_side == 4 * (meta.vocab_size * 64 + 64)
    assert input_side == 4 * meta.vocab_size * 64


@pytest.mark.parametrize("keep", [3, 20, 200, 5000, -10])
def test_truncated_file_is_a_clear_error(tmp_path: Path, keep: int) -> None:
    good = write_tiny_gguf(tmp_path / "good.gguf").read_bytes()
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(good[:keep])
    with pytest.raises(GGUFError) as caught:
        read_gguf_metadata(bad)
    assert str(bad) in str(caught.value)
    if keep > 4:
        assert isinstance(caught.value, GGUFTruncatedError)
        assert "incomplete" in str(caught.value)


def test_random_bytes_and_bad_magic(tmp_path: Path) -> None:
    noise = tmp_path / "noise.gguf"
    noise.write_bytes(np.random.default_rng(3).bytes(4096))
    with pytest.raises(GGUFError, match="not a GGUF model file"):
        read_gguf_metadata(noise)
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(GGUFTruncatedError, match="only 0 bytes"):
        read_gguf_metadata(empty)


def _header(version: int, tensors: int, kvs: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, tensors, kvs)


def test_hostile_headers_fail_fast_without_allocating(tmp_path: Path) -> None:
    cases = {
        "version.gguf": (_header(7, 0, 0) + bytes(64), "version 7"),
        "counts.gguf": (_header(3, 2**62, 2**62) + bytes(64), "more than"),
        # One metadata entry: a string key of 2**60 bytes.
        "keylen.gguf": (_header(3, 0, 1) + struct.pack("<Q", 2**60) + bytes(64), "incomplete"),
        # An array of 2**61 strings.
        "array.gguf": (
            _header(3, 0, 1) + struct.pack("<Q", 1) + b"k" + struct.pack("<IIQ", 9, 8, 2**61)
            + bytes(64),
            "incomplete",
        ),
        # A string array whose first length points past the end.
        "strlen.gguf": (
            _header(3, 0, 1) + struct.pack("<Q", 1) + b"k" + struct.pack("<IIQ", 9, 8, 100)
            + struct.pack("<Q", 2**40) + bytes(800),
            "incomplete",
        ),
        "type.gguf": (_header(3, 0, 1) + struct.pack("<Q", 1) + b"k" + struct.pack("<I", 99) + bytes(64),
                      "unknown value type"),
    }
    for name, (data, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(GGUFError, match=expected):
            read_gguf_metadata(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(GGUFError, match="does not exist"):
        read_gguf_metadata(tmp_path / "missing.gguf")
    with pytest.raises(GGUFError, match="folder"):
        read_gguf_metadata(tmp_path)


def test_old_ggml_file_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "old.bin"
    path.write_bytes(b"tjgg" + os.urandom(100))
    with pytest.raises(GGUFError, match="old GGML"):
        read_gguf_metadata(path)


def test_fixed_format_values_match_gguf_constants() -> None:
    """The reader keeps a few GGUF format values itself (gguf's package is slow to import)."""
    from gguf import constants

    from app.formats import gguf_meta

    assert gguf_meta.GGUF_MAGIC == constants.GGUF_MAGIC
    assert gguf_meta.GGUF_DEFAULT_ALIGNMENT == constants.GGUF_DEFAULT_ALIGNMENT
    assert (gguf_meta._STRING, gguf_meta._ARRAY) == (constants.GGUFValueType.STRING, constants.GGUFValueType.ARRAY)
    sizes = {"UINT8": 1, "INT8": 1, "UINT16": 2, "INT16": 2, "UINT32": 4, "INT32": 4, "FLOAT32": 4, "BOOL": 1,
             "UINT64": 8, "INT64": 8, "FLOAT64": 8}
    assert {constants.GGUFValueType(t).name: size for t, (_, size) in gguf_meta._SCALARS.items()} == sizes
