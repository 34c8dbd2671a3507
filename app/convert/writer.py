"""Stream a GPTQ branch into a GGUF file: metadata, then each tensor in bounded row blocks, encoded on threads.

Each tensor is written as its planned type: F32 for norms, the GPTQ weights packed exactly into
Q4_0/Q4_1/Q8_0 blocks (:mod:`app.convert.exact`), or dequantised float rows encoded as F16 / Q8_0.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import gguf
import numpy as np

from app.convert.checkpoint import GptqBranch, Hyperparameters, PlannedTensor
from app.convert.errors import ConversionCancelled, ConvertError
from app.convert.exact import pack_rows
from app.convert.vocabulary import load_vocabulary

_CHUNK_ELEMENTS = 1 << 23  # rows are dequantised in blocks of about 8M weights (32 MB of float32)


@dataclass(frozen=True)
class ConvertProgress:
    """Where a conversion stands.

    ``stage``: "convert" (bytes of safetensors read into the output), "reference" (the same, for the
    exact F16 model the quality is measured against), "requantize" (llama.cpp requantising; ``tensor``
    names the type) or "quality" (measuring; ``tensor`` names the type). ``done``/``total`` count
    bytes for the first two, steps for the others.
    """

    stage: str
    done: int
    total: int
    tensor: str = ""


ProgressCallback = Callable[[ConvertProgress], None]


def _nbytes(shape: tuple[int, ...], qtype: gguf.GGMLQuantizationType) -> int:
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    return int(np.prod(shape[:-1], dtype=np.int64)) * shape[-1] // block * type_size


def _encode(rows: np.ndarray, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    if qtype == gguf.GGMLQuantizationType.F32:
        return rows.astype(np.float32, copy=False)
    if qtype == gguf.GGMLQuantizationType.F16:
        return rows.astype(np.float16, copy=False)
    return gguf.quants.quantize(rows.astype(np.float32, copy=False), qtype)


def _write_metadata(writer: gguf.GGUFWriter, branch: GptqBranch, file_type: int, chat_template: str | None) -> None:
    hp: Hyperparameters = branch.hparams
    writer.add_name(hp.name)
    writer.add_context_length(hp.n_ctx)
    writer.add_embedding_length(hp.n_embd)
    writer.add_block_count(hp.n_layer)
    writer.add_feed_forward_length(hp.n_ff)
    writer.add_head_count(hp.n_head)
    writer.add_head_count_kv(hp.n_head_kv)
    writer.add_rope_dimension_count(hp.head_dim)
    if hp.head_dim != hp.n_embd // hp.n_head:
        writer.add_key_length(hp.head_dim)
        writer.add_value_length(hp.head_dim)
    writer.add_layer_norm_rms_eps(hp.rms_norm_eps)
    writer.add_rope_freq_base(hp.rope_theta)
    writer.add_vocab_size(hp.n_vocab)
    _write_rope_scaling(writer, hp.rope_scaling)
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_string("hearth.converted_from", f"{branch.settings.label} branch {branch.folder.name}")

    vocab = load_vocabulary(branch.folder, hp.n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(vocab.tokens)
    writer.add_token_scores(vocab.scores)
    writer.add_token_types(vocab.types)
    writer.add_add_space_prefix(vocab.add_space_prefix)
    special = gguf.SpecialVocab(branch.folder, load_merges=False, n_vocab=len(vocab))
    if chat_template is not None:
        special.chat_template = chat_template
    special.add_to_gguf(writer, quiet=True)


def _write_rope_scaling(writer: gguf.GGUFWriter, scaling: dict[str, object] | None) -> None:
    if not scaling:
        return
    kind = str(scaling.get("rope_type") or scaling.get("type") or "")
    factor = scaling.get("factor")
    if kind == "linear" and isinstance(factor, (int, float)):
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(factor))
    elif kind == "yarn" and isinstance(factor, (int, float)):
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(factor))
        original = scaling.get("original_max_position_embeddings")
        if isinstance(original, int):
            writer.add_rope_scaling_orig_ctx_len(original)
    elif kind not in ("", "default"):
        raise ConvertError(f"config.json asks for {kind!r} RoPE scaling, which Hearth cannot convert yet "
                           "(linear and yarn only)")


def nbytes(shape: tuple[int, ...], qtype: gguf.GGMLQuantizationType) -> int:
    """Bytes of a tensor of ``shape`` stored as ``qtype``."""
    return _nbytes(shape, qtype)


def _tensor_jobs(branch: GptqBranch, tensor: PlannedTensor, qtype: gguf.GGMLQuantizationType,
                 exact: bool) -> Iterator[Callable[[], np.ndarray]]:
    """Jobs that each return a bounded block of the tensor's encoded rows, in GGUF order (Q/K permuted)."""
    permutation = tensor.permutation
    width = int(np.prod(tensor.shape[1:], dtype=np.int64)) if len(tensor.shape) > 1 else 1
    step = max(1, _CHUNK_ELEMENTS // max(width, 1))
    blocks = [permutation[start:start + step] if permutation is not None else slice(start, start + step)
              for start in range(0, tensor.rows, step)]
    if len(tensor.shape) == 1:
        data = branch.shards.array(tensor.sources[0]).astype(np.float32)
        rows = data if permutation is None else data[permutation]
        yield partial(_encode, rows, qtype)
    elif tensor.quantised:
        layer = branch.linear(tensor)
        layer.prepare()
        for block in blocks:
            if exact:
                yield partial(pack_rows, layer, block, qtype)
            else:
                yield partial(_dequantise_and_encode, layer.dequantise_rows, block, qtype)
    else:
        array = branch.shards.array(tensor.sources[0])
        for block in blocks:
            yield partial(_dequantise_and_encode, array.__getitem__, block, qtype)


def _dequantise_and_encode(rows_of: Callable[[np.ndarray | slice], np.ndarray], rows: np.ndarray | slice,
                           qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    return _encode(rows_of(rows), qtype)


def _contiguous(job: Callable[[], np.ndarray]) -> np.ndarray:
    return np.ascontiguousarray(job())


def _encoded_blocks(jobs: Iterator[Callable[[], np.ndarray]], pool: ThreadPoolExecutor,
                    workers: int) -> Iterator[np.ndarray]:
    """Run the jobs on ``workers`` threads (numpy releases the GIL), in order, with at most ``workers + 1``
    blocks in flight so memory stays bounded."""
    pending: deque[Future[np.ndarray]] = deque()
    for job in jobs:
        pending.append(pool.submit(_contiguous, job))
        if len(pending) > workers:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _write_tensor(writer: gguf.GGUFWriter, blocks: Iterator[np.ndarray], cancel: Callable[[], bool]) -> None:
    """Append one tensor's data block by block (``GGUFWriter.write_tensor_data`` wants it whole)."""
    assert writer.fout is not None
    out = writer.fout[0]
    name = next(iter(writer.tensors[0]))
    info = writer.tensors[0].pop(name)
    writer.write_padding(out, out.tell())
    written = 0
    for encoded in blocks:
        if cancel():
            raise ConversionCancelled()
        out.write(encoded.data)
        written += encoded.nbytes
    if written != info.nbytes:
        raise ConvertError(f"internal error: wrote {written} bytes for {name}, planned {info.nbytes}")
    writer.write_padding(out, written)
    writer.state = gguf.gguf_writer.WriterState.WEIGHTS


def plain_types(branch: GptqBranch, direct_type: str) -> dict[str, gguf.GGMLQuantizationType]:
    """Every tensor's type when the branch is dequantised and written as F16 (or Q8_0 where rows allow)."""
    types = {}
    for tensor in branch.plan:
        if len(tensor.shape) == 1:
            types[tensor.gguf_name] = gguf.GGMLQuantizationType.F32
        elif direct_type == "q8_0" and tensor.shape[-1] % 32 == 0:
            types[tensor.gguf_name] = gguf.GGMLQuantizationType.Q8_0
        else:
            types[tensor.gguf_name] = gguf.GGMLQuantizationType.F16
    return types


def write_gguf(branch: GptqBranch, path: Path, types: dict[str, gguf.GGMLQuantizationType], exact: set[str],
               file_type: int, chat_template: str | None, progress: ProgressCallback, cancel: Callable[[], bool],
               stage: str = "convert") -> None:
    """Stream the branch into a GGUF at ``path``, one tensor (in row blocks) at a time.

    ``types`` gives each tensor's GGUF type; tensors named in ``exact`` are GPTQ layers packed as they
    are (:func:`app.convert.exact.pack_rows`), the others are dequantised and encoded.
    """
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    try:
        _write_metadata(writer, branch, file_type, chat_template)
        for tensor in branch.plan:
            qtype = types[tensor.gguf_name]
            writer.add_tensor_info(tensor.gguf_name, tensor.shape, np.dtype(np.float32),
                                   _nbytes(tensor.shape, qtype), raw_dtype=qtype)
        writer.write_header_to_file(path)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        total = sum(branch.source_bytes(t) for t in branch.plan)
        done = 0
        progress(ConvertProgress(stage, 0, total))
        workers = max(1, min(4, os.cpu_count() or 1))
        with ThreadPoolExecutor(workers, thread_name_prefix="hearth-convert") as pool:
            for tensor in branch.plan:
                if cancel():
                    raise ConversionCancelled()
                jobs = _tensor_jobs(branch, tensor, types[tensor.gguf_name], tensor.gguf_name in exact)
                _write_tensor(writer, _encoded_blocks(jobs, pool, workers), cancel)
                done += branch.source_bytes(tensor)
                progress(ConvertProgress(stage, done, total, tensor.gguf_name))
        writer.flush()
        assert writer.fout is not None
        os.fsync(writer.fout[0].fileno())
    finally:
        writer.close()
