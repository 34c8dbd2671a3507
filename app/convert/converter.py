"""Convert a GPTQ branch folder into a GGUF llama.cpp loads: dequantise, stream-write, optionally requantise."""

from __future__ import annotations

import os
import shutil
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import gguf
import numpy as np

from app.catalog.installed import converted_output
from app.convert.checkpoint import GptqBranch, Hyperparameters, PlannedTensor
from app.convert.errors import ConversionCancelled, ConvertError
from app.convert.gptq import GptqSettings, read_json, read_settings
from app.convert.requantize import requantize, wait_for_removal
from app.convert.vocabulary import load_vocabulary

OUTPUT_TYPES = ("q4_k_m", "q3_k_m", "q8_0", "f16")
DEFAULT_TYPE_FOR_BITS = {2: "q3_k_m", 3: "q3_k_m", 4: "q4_k_m", 8: "q8_0"}
# Approximate bits per weight of each result, for the free-space estimate.
_BITS_PER_WEIGHT = {"q4_k_m": 4.9, "q3_k_m": 3.95, "q8_0": 8.5, "f16": 16.0}
_CHUNK_ELEMENTS = 1 << 23  # rows are dequantised in blocks of about 8M weights (32 MB of float32)
_MARGIN_BYTES = 64 << 20


@dataclass(frozen=True)
class ConvertProgress:
    """Where a conversion stands: ``stage`` is "convert" (bytes of safetensors read) or "requantize"."""

    stage: str
    done: int
    total: int
    tensor: str = ""


ProgressCallback = Callable[[ConvertProgress], None]


def default_output(folder: Path, out_type: str) -> Path:
    """Beside the branch folder: ``<branch>.<TYPE>.gguf`` (inside it, the file would count as branch content)."""
    return converted_output(folder, out_type)


def gptq_settings(folder: Path) -> GptqSettings:
    """The branch's GPTQ settings (bits, groups, act order), read from its config files alone."""
    config_path = Path(folder) / "config.json"
    if not config_path.is_file():
        raise ConvertError(f"{folder} has no config.json; pass the folder of a downloaded GPTQ branch")
    return read_settings(Path(folder), read_json(config_path))


def resolve_template(template: str | None) -> str | None:
    """The Jinja of catalogue prompt template ``template``; None leaves the tokenizer_config's own."""
    if template is None:
        return None
    from app.catalog import load_catalog

    templates = load_catalog().templates
    if template not in templates:
        raise ConvertError(f"no prompt template {template!r} in the catalogue; choose one of "
                           f"{', '.join(sorted(templates))}")
    return templates[template].jinja


def _tensor_type(tensor: PlannedTensor, out_type: str) -> gguf.GGMLQuantizationType:
    if len(tensor.shape) == 1:
        return gguf.GGMLQuantizationType.F32
    if out_type == "q8_0" and tensor.shape[-1] % 32 == 0:
        return gguf.GGMLQuantizationType.Q8_0
    return gguf.GGMLQuantizationType.F16


def _nbytes(shape: tuple[int, ...], qtype: gguf.GGMLQuantizationType) -> int:
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    return int(np.prod(shape[:-1], dtype=np.int64)) * shape[-1] // block * type_size


def _encode(rows: np.ndarray, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    if qtype == gguf.GGMLQuantizationType.F32:
        return rows.astype(np.float32, copy=False)
    if qtype == gguf.GGMLQuantizationType.F16:
        return rows.astype(np.float16, copy=False)
    return gguf.quants.quantize(rows.astype(np.float32, copy=False), qtype)


def check_free_space(folder: Path, needed: int) -> None:
    """Raise a clear error when ``folder``'s disk has less than ``needed`` bytes free."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise ConvertError(f"not enough free disk space in {folder}: the conversion needs about "
                           f"{needed / 1e9:.1f} GB and {free / 1e9:.1f} GB is free; free some space or "
                           "choose an --out file on another disk")


def estimate_bytes(branch: GptqBranch, out_type: str) -> int:
    """Disk the conversion needs at its peak: the F16 intermediate plus the result when requantising."""
    weights = sum(int(np.prod(t.shape, dtype=np.int64)) for t in branch.plan)
    direct = "q8_0" if out_type == "q8_0" else "f16"
    need = weights * _BITS_PER_WEIGHT[direct] // 8
    if out_type not in ("q8_0", "f16"):
        need += weights * _BITS_PER_WEIGHT[out_type] // 8
    return int(need) + _MARGIN_BYTES


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


def _tensor_blocks(branch: GptqBranch, tensor: PlannedTensor) -> Iterator[Callable[[], np.ndarray]]:
    """Jobs that each make a bounded block of the tensor's float rows, in GGUF order (Q/K permuted)."""
    permutation = tensor.permutation
    width = int(np.prod(tensor.shape[1:], dtype=np.int64)) if len(tensor.shape) > 1 else 1
    step = max(1, _CHUNK_ELEMENTS // max(width, 1))
    blocks = [permutation[start:start + step] if permutation is not None else slice(start, start + step)
              for start in range(0, tensor.rows, step)]
    if len(tensor.shape) == 1:
        data = branch.shards.array(tensor.sources[0]).astype(np.float32)
        yield lambda: data if permutation is None else data[permutation]
    elif tensor.quantised:
        layer = branch.linear(tensor)
        layer.prepare()
        for rows in blocks:
            yield partial(layer.dequantise_rows, rows)
    else:
        array = branch.shards.array(tensor.sources[0])
        for rows in blocks:
            yield partial(array.__getitem__, rows)


def _run_and_encode(job: Callable[[], np.ndarray], qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    return np.ascontiguousarray(_encode(job(), qtype))


def _encoded_blocks(jobs: Iterator[Callable[[], np.ndarray]], qtype: gguf.GGMLQuantizationType,
                    pool: ThreadPoolExecutor, workers: int) -> Iterator[np.ndarray]:
    """Run the jobs and encode their rows on ``workers`` threads (numpy releases the GIL), in order, with
    at most ``workers + 1`` blocks in flight so memory stays bounded."""
    pending: deque[Future[np.ndarray]] = deque()
    for job in jobs:
        pending.append(pool.submit(_run_and_encode, job, qtype))
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


def write_gguf(branch: GptqBranch, path: Path, direct_type: str, chat_template: str | None,
               progress: ProgressCallback, cancel: Callable[[], bool]) -> None:
    """Stream the branch into a GGUF at ``path`` as F16 or Q8_0, one tensor (in row blocks) at a time."""
    file_type = gguf.LlamaFileType.MOSTLY_Q8_0 if direct_type == "q8_0" else gguf.LlamaFileType.MOSTLY_F16
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    try:
        _write_metadata(writer, branch, int(file_type), chat_template)
        types = [_tensor_type(t, direct_type) for t in branch.plan]
        for tensor, qtype in zip(branch.plan, types, strict=True):
            writer.add_tensor_info(tensor.gguf_name, tensor.shape, np.dtype(np.float32),
                                   _nbytes(tensor.shape, qtype), raw_dtype=qtype)
        writer.write_header_to_file(path)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        total = sum(branch.source_bytes(t) for t in branch.plan)
        done = 0
        progress(ConvertProgress("convert", 0, total))
        workers = max(1, min(4, os.cpu_count() or 1))
        with ThreadPoolExecutor(workers, thread_name_prefix="hearth-convert") as pool:
            for tensor, qtype in zip(branch.plan, types, strict=True):
                if cancel():
                    raise ConversionCancelled()
                _write_tensor(writer, _encoded_blocks(_tensor_blocks(branch, tensor), qtype, pool, workers), cancel)
                done += branch.source_bytes(tensor)
                progress(ConvertProgress("convert", done, total, tensor.gguf_name))
        writer.flush()
        assert writer.fout is not None
        os.fsync(writer.fout[0].fileno())
    finally:
        writer.close()


def convert_branch(folder: Path, out: Path | None = None, out_type: str | None = None, template: str | None = None,
                   progress: ProgressCallback | None = None, cancel: Callable[[], bool] | None = None) -> Path:
    """Convert the GPTQ branch in ``folder`` to a GGUF; return its path.

    ``out_type`` is one of :data:`OUTPUT_TYPES` (default: the K-quant nearest the GPTQ bits);
    ``template`` a catalogue prompt template id to embed as ``tokenizer.chat_template``.
    ``progress`` receives :class:`ConvertProgress`; ``cancel`` is polled between tensors and row
    blocks, and makes the call raise :class:`ConversionCancelled`. Work happens in ``*.partial``
    files beside the output, renamed only when complete and removed on cancel or error.
    """
    progress = progress or (lambda _p: None)
    cancel = cancel or (lambda: False)
    if out_type is not None and out_type not in OUTPUT_TYPES:
        raise ConvertError(f"unknown output type {out_type!r}; choose one of {', '.join(OUTPUT_TYPES)}")
    chat_template = resolve_template(template)
    branch = GptqBranch(Path(folder))
    try:
        out_type = out_type or DEFAULT_TYPE_FOR_BITS[branch.settings.bits]
        out = Path(out) if out is not None else default_output(branch.folder, out_type)
        if out.is_dir():
            raise ConvertError(f"{out} is a folder; --out needs a file name ending in .gguf")
        if not out.parent.is_dir():
            raise ConvertError(f"the output folder {out.parent} does not exist")
        check_free_space(out.parent, estimate_bytes(branch, out_type))
        partial = out.with_name(out.name + ".partial")
        direct = out_type in ("q8_0", "f16")
        intermediate = partial if direct else out.with_name(out.name + ".f16.partial")
        try:
            write_gguf(branch, intermediate, "q8_0" if out_type == "q8_0" else "f16", chat_template, progress, cancel)
            if not direct:
                progress(ConvertProgress("requantize", 0, 1))
                requantize(intermediate, partial, out_type, cancel)
                wait_for_removal(intermediate)
                progress(ConvertProgress("requantize", 1, 1))
            os.replace(partial, out)
        except BaseException:
            wait_for_removal(intermediate)
            wait_for_removal(partial)
            raise
        return out
    finally:
        branch.close()
