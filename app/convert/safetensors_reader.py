"""Read tensors from one or more ``*.safetensors`` shards with numpy, no torch, one tensor at a time."""

from __future__ import annotations

import io
import json
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.convert.errors import ConvertError

_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
_MAX_HEADER = 100 * 1024 * 1024
_SHARD_NAME = re.compile(r"-(\d{5})-of-(\d{5})\.safetensors$")
INDEX_NAME = "model.safetensors.index.json"


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives: its shard, safetensors dtype, shape and byte range."""

    name: str
    path: Path
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start


def _read_header(path: Path) -> list[TensorEntry]:
    try:
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise ConvertError(f"{path.name} is not a safetensors file (it is only {len(prefix)} bytes); "
                                   "download the branch again")
            (length,) = struct.unpack("<Q", prefix)
            if length > _MAX_HEADER:
                raise ConvertError(f"{path.name} is not a safetensors file (header length {length}); "
                                   "download the branch again")
            raw = handle.read(length)
            size = path.stat().st_size
    except OSError as exc:
        raise ConvertError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ConvertError(f"{path.name} has a damaged safetensors header; download the branch again") from None
    base = 8 + length
    entries = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = info.get("dtype")
        if dtype not in _DTYPES:
            raise ConvertError(f"{path.name}: tensor {name} has unsupported dtype {dtype!r}")
        start, end = (base + int(offset) for offset in info["data_offsets"])
        shape = tuple(int(dim) for dim in info["shape"])
        if end > size or end - start != int(np.prod(shape, dtype=np.int64)) * _DTYPES[dtype].itemsize:
            raise ConvertError(f"{path.name} is truncated or damaged (tensor {name} does not fit); "
                               "download the branch again")
        entries.append(TensorEntry(name, path, dtype, shape, start, end))
    return entries


def shard_paths(folder: Path) -> list[Path]:
    """The branch's shards: from the index file when there is one, else every ``*.safetensors``.

    A shard the index names, or a numbered ``-0000k-of-0000n`` shard, that is absent is an error.
    """
    index = folder / INDEX_NAME
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ConvertError(f"{index.name} is damaged (no weight_map); download the branch again") from None
        names = sorted(set(weight_map.values()))
        missing = [name for name in names if not (folder / name).is_file()]
        if missing:
            raise ConvertError(f"shard {missing[0]} is missing from {folder} ({len(missing)} of {len(names)} "
                               "shards absent); finish or repeat the download")
        return [folder / name for name in names]
    paths = sorted(folder.glob("*.safetensors"))
    if not paths:
        raise ConvertError(f"no *.safetensors files in {folder}; is this a downloaded GPTQ branch?")
    numbered = [m for m in (_SHARD_NAME.search(p.name) for p in paths) if m]
    if numbered:
        expected = int(numbered[0].group(2))
        present = {int(m.group(1)) for m in numbered}
        absent = sorted(set(range(1, expected + 1)) - present)
        if absent:
            stem = paths[0].name[: numbered[0].start()]
            raise ConvertError(f"shard {stem}-{absent[0]:05d}-of-{expected:05d}.safetensors is missing from "
                               f"{folder} ({len(absent)} of {expected} shards absent); finish or repeat the download")
    return paths


class SafetensorsShards:
    """Every tensor of a set of shards, read on demand: only the tensors asked for come into memory.

    Tensors are read with positioned reads rather than kept memory-mapped, so that the pages of a
    tensor already converted leave the process (a 70B branch mapped whole would count its read pages
    against resident memory until the end).
    """

    def __init__(self, paths: list[Path]) -> None:
        self.entries: dict[str, TensorEntry] = {}
        for path in paths:
            for entry in _read_header(path):
                self.entries[entry.name] = entry
        self._files: dict[Path, io.BufferedReader] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __enter__(self) -> SafetensorsShards:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def total_bytes(self) -> int:
        return sum(entry.nbytes for entry in self.entries.values())

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name].shape

    def array(self, name: str) -> np.ndarray:
        """The tensor as a fresh array (BF16 comes back as float32)."""
        entry = self.entries[name]
        handle = self._files.get(entry.path)
        if handle is None:
            handle = entry.path.open("rb")
            self._files[entry.path] = handle
        dtype = _DTYPES[entry.dtype]
        handle.seek(entry.start)
        data = np.empty(entry.shape, dtype=dtype)
        read = handle.readinto(data.data) if entry.nbytes else 0
        if read != entry.nbytes:
            raise ConvertError(f"{entry.path.name} ended early while reading {name}; download the branch again")
        if entry.dtype == "BF16":
            return (data.astype(np.uint32) << 16).view(np.float32)
        return data

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
