"""Fast, bounded GGUF header reading: the metadata and tensor sizes Hearth needs, nothing more."""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import HearthError

# gguf's package imports NumPy and its writer on import (0.2 s of the app's start-up), so this
# module imports gguf.constants only where it needs more than these fixed values of the GGUF
# format; tests/engine/test_gguf_meta.py checks them against gguf.constants.
GGUF_MAGIC = 0x46554747  # "GGUF" little-endian
GGUF_DEFAULT_ALIGNMENT = 32
_STRING, _ARRAY = 8, 9  # _STRING, .ARRAY
# Fixed-size scalar value types by GGUFValueType: struct format and size in bytes.
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1),  # UINT8
    1: ("<b", 1),  # INT8
    2: ("<H", 2),  # UINT16
    3: ("<h", 2),  # INT16
    4: ("<I", 4),  # UINT32
    5: ("<i", 4),  # INT32
    6: ("<f", 4),  # FLOAT32
    7: ("<?", 1),  # BOOL
    10: ("<Q", 8),  # UINT64
    11: ("<q", 8),  # INT64
    12: ("<d", 8),  # FLOAT64
}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_MAX_DIMS = 4
# Numeric arrays up to this many elements are read (per-layer head counts and the like);
# longer ones (token types, scores) are skipped with one seek.
_SMALL_ARRAY = 4096
# Token-array checkpoints: every Nth entry's offset, so BOS/EOS text costs < N steps to reach.
_CHECKPOINT_EVERY = 64
_TOKENS_KEY = "tokenizer.ggml.tokens"
# Bounds on what a header may claim, checked before anything is read or allocated: a damaged or
# hostile header fails in milliseconds with a short message instead of reading gigabytes.
_MAX_KEY_BYTES = 65_535  # the GGUF spec's limit on a key
_MAX_NAME_BYTES = 4_096  # tensor names (ggml allows 64)
_MAX_VALUE_STRING = 16 << 20  # longer string values are skipped, not read
_MAX_KEPT_BYTES = 64 << 20  # all string values kept together
_MAX_STRING_ARRAY = 1 << 22  # entries in one string array (tokenizers have < 300k tokens)
_MAX_TENSORS = 1 << 20  # the largest models have a few thousand
_MAX_KVS = 1 << 20  # real files have well under a hundred
_KEPT_COST_PER_ITEM = 32  # what one number of a kept array costs in Python, counted against _MAX_KEPT_BYTES
_EXCERPT = 60
# Largest believable model hyper-parameters (llama.cpp allows 512 layers); beyond is damage.
_ARCH_LIMITS = {
    "block_count": 65_536,
    "context_length": 1 << 32,
    "embedding_length": 1 << 24,
    "attention.head_count": 1 << 16,
    "attention.head_count_kv": 1 << 16,
    "attention.key_length": 1 << 20,
    "attention.value_length": 1 << 20,
}


def excerpt(text: object, limit: int = _EXCERPT) -> str:
    """A short, printable, quoted excerpt of text read from a file (for error messages)."""
    value = text if isinstance(text, str) else repr(text)
    safe = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in value[:limit])
    return f"'{safe[:limit]}…'" if len(safe) > limit or len(value) > limit else f"'{safe}'"


class GGUFError(HearthError):
    """A file that is not a GGUF Hearth can read; the message names the file and the problem."""


class GGUFTruncatedError(GGUFError):
    """The file ends before its header or tensor data says it should (an unfinished download)."""


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the header describes it: ``shape`` is in ggml order (ne0 first)."""

    name: str
    shape: tuple[int, ...]
    type_name: str
    n_bytes: int
    offset: int

    @property
    def layer(self) -> int | None:
        """The block number for ``blk.N.*`` tensors, else None."""
        if not self.name.startswith("blk."):
            return None
        number = self.name.split(".", 2)[1]
        return int(number) if number.isdigit() else None


@dataclass(frozen=True)
class GGUFMetadata:
    """What Hearth needs from a GGUF header: model shape, tokenizer specials, tensor sizes."""

    path: Path
    version: int
    file_size: int
    architecture: str
    name: str | None
    context_length: int | None
    block_count: int | None
    embedding_length: int | None
    head_count: int | None
    head_count_kv: int | None
    key_length: int | None
    value_length: int | None
    file_type: int | None
    chat_template: str | None
    bos_token_id: int | None
    eos_token_id: int | None
    bos_token: str | None
    eos_token: str | None
    add_bos_token: bool | None
    vocab_size: int
    tensors: tuple[TensorInfo, ...]
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def quant(self) -> str:
        """The file type as people write it (``Q4_K_M``), or the commonest tensor type."""
        if self.file_type is not None:
            from gguf.constants import LlamaFileType

            try:
                return LlamaFileType(self.file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
            except ValueError:
                return f"type {self.file_type}"
        sizes: dict[str, int] = {}
        for tensor in self.tensors:
            sizes[tensor.type_name] = sizes.get(tensor.type_name, 0) + tensor.n_bytes
        return max(sizes, key=sizes.__getitem__) if sizes else "unknown"

    @property
    def head_dim_k(self) -> int:
        """Size of one key head (``attention.key_length``, else embedding / heads)."""
        if self.key_length:
            return self.key_length
        if self.embedding_length and self.head_count:
            return self.embedding_length // self.head_count
        return 0

    @property
    def head_dim_v(self) -> int:
        return self.value_length or self.head_dim_k

    @property
    def tensor_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)

    def layer_bytes(self) -> list[int]:
        """Bytes of weights in each ``blk.N`` block, index N."""
        count = self.block_count or 0
        sizes = [0] * count
        for tensor in self.tensors:
            layer = tensor.layer
            if layer is not None and 0 <= layer < count:
                sizes[layer] += tensor.n_bytes
        return sizes

    def non_layer_bytes(self) -> tuple[int, int]:
        """(input side, output side): token embeddings stay on the CPU; the output head can move."""
        output = sum(
            t.n_bytes for t in self.tensors if t.layer is None and t.name.startswith("output")
        )
        rest = sum(t.n_bytes for t in self.tensors if t.layer is None) - output
        return rest, output


def _value_type_name(type_id: int) -> str:
    from gguf.constants import GGUFValueType

    try:
        return GGUFValueType(type_id).name
    except ValueError:
        return str(type_id)


class _HeaderReader:
    """A cursor over a memory-mapped GGUF file; every read is bounds-checked."""

    def __init__(self, path: Path, buffer: mmap.mmap) -> None:
        self.path = path
        self.buf = buffer
        self.size = len(buffer)
        self.pos = 0
        self.kept = 0  # bytes of string values kept so far
        view = memoryview(buffer)
        # Eight uint64 views, one per byte alignment: views[p & 7][p >> 3] is the uint64 at p.
        self._view = view
        self._u64_views = [
            view[k : k + ((self.size - k) // 8) * 8].cast("Q") for k in range(min(8, self.size))
        ]

    def release(self) -> None:
        for v in self._u64_views:
            v.release()
        self._view.release()

    def fail(self, problem: str) -> GGUFError:
        return GGUFError(f"{self.path} is not a usable GGUF file: {problem}")

    def truncated(self, what: str) -> GGUFTruncatedError:
        return GGUFTruncatedError(
            f"{self.path} is incomplete: it ends inside {what} "
            f"(the file has {self.size:,} bytes). Download or copy it again."
        )

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise self.truncated(what)

    def u32(self, what: str) -> int:
        self.need(4, what)
        (value,) = _U32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(value)

    def u64(self, what: str) -> int:
        self.need(8, what)
        (value,) = _U64.unpack_from(self.buf, self.pos)
        self.pos += 8
        return int(value)

    def string(self, what: str) -> str | None:
        """A string value; None (skipped unread) when longer than any value Hearth keeps."""
        length = self.u64(what)
        self.need(length, what)
        if length > _MAX_VALUE_STRING or self.kept + length > _MAX_KEPT_BYTES:
            self.pos += length
            return None
        raw = self.buf[self.pos : self.pos + length]
        self.pos += length
        self.kept += length
        return raw.decode("utf-8", errors="replace")

    def name(self, what: str, limit: int) -> str:
        """A key or tensor name: 1 to ``limit`` bytes of printable UTF-8, else the header is damaged."""
        length = self.u64(what)
        self.need(length, what)
        if not 0 < length <= limit:
            raise self.fail(f"{what} is {length:,} bytes long (a name takes 1 to {limit:,}): the header is damaged")
        self.need(length, what)
        raw = self.buf[self.pos : self.pos + length]
        self.pos += length
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not text ({excerpt(raw)}): the header is damaged") from None
        if not text.isprintable():
            raise self.fail(f"{what} {excerpt(text)} holds control characters: the header is damaged")
        return text

    def scalar(self, type_id: int, what: str) -> Any:
        fmt, size = _SCALARS[type_id]
        self.need(size, what)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def skip_strings(self, count: int, what: str, checkpoints: list[int] | None = None) -> None:
        """Walk past ``count`` strings (8-byte length + bytes) reading only the lengths."""
        if count * 8 > self.size - self.pos:
            raise self.truncated(what)
        views = self._u64_views
        pos = self.pos
        try:
            remaining = count
            while remaining:
                block = min(remaining, _CHECKPOINT_EVERY)
                if checkpoints is not None:
                    checkpoints.append(pos)
                for _ in range(block):
                    pos += 8 + views[pos & 7][pos >> 3]
                remaining -= block
        except IndexError:
            raise self.truncated(what) from None
        if pos > self.size:
            raise self.truncated(what)
        self.pos = pos

    def value(self, type_id: int, key: str) -> Any:
        """Read one value; big arrays are skipped and return None (tokens keep checkpoints)."""
        what = f"the value of {excerpt(key)}"
        if type_id in _SCALARS:
            return self.scalar(type_id, what)
        if type_id == _STRING:
            return self.string(what)
        if type_id != _ARRAY:
            raise self.fail(f"{excerpt(key)} has an unknown value type {type_id}")
        item_type = self.u32(what)
        count = self.u64(what)
        if item_type in _SCALARS:
            _, size = _SCALARS[item_type]
            self.need(count * size, what)
            if count <= _SMALL_ARRAY and self.kept + count * _KEPT_COST_PER_ITEM <= _MAX_KEPT_BYTES:
                self.kept += count * _KEPT_COST_PER_ITEM
                fmt = "<" + _SCALARS[item_type][0][1] * count
                values = list(struct.unpack_from(fmt, self.buf, self.pos))
                self.pos += count * size
                return values
            self.pos += count * size
            return None
        if item_type == _STRING:
            self.need(count * 8, what)
            if count > _MAX_STRING_ARRAY:
                raise self.fail(f"{excerpt(key)} claims {count:,} strings (at most {_MAX_STRING_ARRAY:,})")
            if count <= 64 and key != _TOKENS_KEY:
                return [self.string(what) for _ in range(count)]
            start = self.pos
            checkpoints: list[int] | None = [] if key == _TOKENS_KEY else None
            self.skip_strings(count, what, checkpoints)
            if checkpoints is not None:
                return _StringArray(start, count, checkpoints)
            return None
        raise self.fail(f"{excerpt(key)} is an array of {_value_type_name(item_type)}, which Hearth cannot read")

    def token_text(self, tokens: _StringArray, token_id: int) -> str | None:
        if not 0 <= token_id < tokens.count:
            return None
        self.pos = tokens.checkpoints[token_id // _CHECKPOINT_EVERY]
        self.skip_strings(token_id % _CHECKPOINT_EVERY, "the token list")
        return self.string("the token list")


@dataclass(frozen=True)
class _StringArray:
    """Where a skipped string array lies, with every 64th entry's offset."""

    start: int
    count: int
    checkpoints: list[int]


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return max(value)  # per-layer counts: the largest layer decides memory
    return None


def _tensor_info(reader: _HeaderReader, index: int) -> tuple[str, tuple[int, ...], int, int]:
    name = reader.name(f"tensor #{index}'s name", _MAX_NAME_BYTES)
    what = f"tensor {excerpt(name)}"
    n_dims = reader.u32(what)
    if not 1 <= n_dims <= _MAX_DIMS:
        raise reader.fail(f"{what} claims {n_dims} dimensions (at most {_MAX_DIMS})")
    shape = tuple(reader.u64(what) for _ in range(n_dims))
    type_id = reader.u32(what)
    offset = reader.u64(what)
    return name, shape, type_id, offset


def _tensor_bytes(reader: _HeaderReader, name: str, shape: tuple[int, ...], type_id: int) -> tuple[str, int]:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        qtype = GGMLQuantizationType(type_id)
    except ValueError:
        raise reader.fail(
            f"tensor {excerpt(name)} has tensor type {type_id}, unknown to this Hearth (a newer format?)"
        ) from None
    block, type_size = GGML_QUANT_SIZES[qtype]
    elements = 1
    for dim in shape:
        elements *= dim
    if shape[0] % block:
        raise reader.fail(f"tensor {excerpt(name)} has {shape[0]} columns, not a multiple of {block}")
    return qtype.name, elements // block * type_size


def read_gguf_metadata(path: str | Path) -> GGUFMetadata:
    """Read a GGUF header in milliseconds; raise :class:`GGUFError` naming the file on any problem."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            size = path.stat().st_size
            if size < 24:
                if size >= 4 and f.read(4) != struct.pack("<I", GGUF_MAGIC):
                    raise GGUFError(f"{path} is not a GGUF model file (it does not start with 'GGUF')")
                raise GGUFTruncatedError(f"{path} is incomplete: only {size} bytes. Download or copy it again.")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buffer, _reader(path, buffer) as reader:
                return _parse(reader)
    except FileNotFoundError:
        raise GGUFError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise GGUFError(f"{path} is a folder, not a GGUF file") from None
    except PermissionError:
        raise GGUFError(f"{path} cannot be read: permission denied") from None
    except OSError as exc:
        raise GGUFError(f"{path} cannot be read: {exc.strerror or exc}") from None


@contextmanager
def _reader(path: Path, buffer: mmap.mmap) -> Iterator[_HeaderReader]:
    reader = _HeaderReader(path, buffer)
    try:
        yield reader
    finally:
        reader.release()


def _parse(r: _HeaderReader) -> GGUFMetadata:
    magic = r.u32("the magic number")
    if magic != GGUF_MAGIC:
        if r.buf[:4] == b"ggjt" or r.buf[:4] == b"tjgg" or r.buf[:4] == b"lmgg":
            raise r.fail("it is an old GGML file; llama.cpp reads only GGUF now")
        raise GGUFError(f"{r.path} is not a GGUF model file (it does not start with 'GGUF')")
    version = r.u32("the version")
    if version not in (2, 3):
        if version & 0xFFFF == 0 and version:
            raise r.fail("it is a big-endian GGUF, which Hearth cannot run")
        raise r.fail(f"GGUF version {version} is not supported (Hearth reads versions 2 and 3)")
    tensor_count = r.u64("the tensor count")
    kv_count = r.u64("the metadata count")
    # Each metadata entry takes at least 13 bytes, each tensor entry at least 29.
    if kv_count * 13 > r.size or tensor_count * 29 > r.size:
        raise GGUFTruncatedError(
            f"{r.path} is incomplete or damaged: the header claims {kv_count:,} metadata entries "
            f"and {tensor_count:,} tensors, more than a {r.size:,}-byte file can hold"
        )
    if kv_count > _MAX_KVS or tensor_count > _MAX_TENSORS:
        raise r.fail(f"the header claims {kv_count:,} metadata entries and {tensor_count:,} tensors "
                     f"(Hearth reads at most {_MAX_KVS:,} of each): the header is damaged")
    values: dict[str, Any] = {}
    tokens: _StringArray | None = None
    for index in range(kv_count):
        key = r.name(f"metadata key #{index}", _MAX_KEY_BYTES)
        type_id = r.u32(f"the type of {excerpt(key)}")
        value = r.value(type_id, key)
        if isinstance(value, _StringArray):
            tokens = value
            values[key] = None
        else:
            values[key] = value
    raw_tensors = [_tensor_info(r, i) for i in range(tensor_count)]
    alignment = values.get("general.alignment", GGUF_DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise r.fail(f"general.alignment is {excerpt(alignment)}, not a power of two")
    data_start = -(-r.pos // alignment) * alignment
    tensors = []
    for name, shape, type_id, offset in raw_tensors:
        type_name, n_bytes = _tensor_bytes(r, name, shape, type_id)
        if data_start + offset + n_bytes > r.size:
            raise GGUFTruncatedError(
                f"{r.path} is incomplete: tensor {excerpt(name)} runs past the end of the file "
                f"({r.size:,} bytes). Download or copy it again."
            )
        tensors.append(TensorInfo(name, shape, type_name, n_bytes, offset))

    arch = values.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise r.fail("it has no general.architecture")
    if len(arch) > 64 or not arch.isprintable():
        raise r.fail(f"general.architecture is {excerpt(arch)}, not an architecture name: the header is damaged")

    def arch_int(suffix: str) -> int | None:
        value = _int_or_none(values.get(f"{arch}.{suffix}"))
        limit = _ARCH_LIMITS.get(suffix)
        if value is not None and limit is not None and not 0 <= value <= limit:
            raise r.fail(f"{arch}.{suffix} is {value:,}, outside 0 to {limit:,}: the header is damaged")
        return value

    bos_id = _int_or_none(values.get("tokenizer.ggml.bos_token_id"))
    eos_id = _int_or_none(values.get("tokenizer.ggml.eos_token_id"))
    bos_text = r.token_text(tokens, bos_id) if tokens and bos_id is not None else None
    eos_text = r.token_text(tokens, eos_id) if tokens and eos_id is not None else None
    template = values.get("tokenizer.chat_template")
    model_name = values.get("general.name")
    add_bos = values.get("tokenizer.ggml.add_bos_token")
    return GGUFMetadata(
        path=r.path,
        version=version,
        file_size=r.size,
        architecture=arch,
        name=model_name if isinstance(model_name, str) else None,
        context_length=arch_int("context_length"),
        block_count=arch_int("block_count"),
        embedding_length=arch_int("embedding_length"),
        head_count=arch_int("attention.head_count"),
        head_count_kv=arch_int("attention.head_count_kv") or arch_int("attention.head_count"),
        key_length=arch_int("attention.key_length"),
        value_length=arch_int("attention.value_length"),
        file_type=_int_or_none(values.get("general.file_type")),
        chat_template=template if isinstance(template, str) and template.strip() else None,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        bos_token=bos_text,
        eos_token=eos_text,
        add_bos_token=add_bos if isinstance(add_bos, bool) else None,
        vocab_size=tokens.count if tokens else 0,
        tensors=tuple(tensors),
        values={k: v for k, v in values.items() if v is not None},
    )
