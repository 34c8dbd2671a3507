"""Mutated GGUF headers: each read ends in metadata or one short GGUFError, within a time and memory budget.

A generator flips bits, writes extreme lengths and counts, changes type ids and truncates a real
GGUFWriter-made model; tracemalloc measures the peak of every read. The issue's cases (a flipped
type byte, ``llama.block_count = 0xFFFFFFFF``) are named regressions.
"""

from __future__ import annotations

import random
import struct
import time
import tracemalloc
from pathlib import Path

import gguf
import pytest

from app.engine.gguf_meta import GGUFError, GGUFMetadata, read_gguf_metadata
from tests.engine.tiny_gguf import write_tiny_gguf
from tests.hub.hostile_hub import tally

TIME_BUDGET_S = 2.0  # per read, on a loaded two-core machine (an honest read takes milliseconds)
MEMORY_BUDGET = 32 << 20  # peak Python allocations per read
MESSAGE_LIMIT = 400
EXTREMES_64 = [0, 1, 2**31, 2**32 - 1, 2**32, 2**62, 2**63, 2**64 - 1]
EXTREMES_32 = [0, 7, 8, 9, 13, 99, 2**31, 2**32 - 1]


def _within_budget(path: Path) -> tuple[bool, str]:
    """Read ``path``: (handled, what happened)."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        meta = read_gguf_metadata(path)
        meta.layer_bytes()  # what the offload planner does with the counts
        meta.non_layer_bytes()
        outcome, message = "read", ""
    except GGUFError as exc:
        outcome, message = "refused", str(exc)
    except Exception as exc:  # any other exception is a failure of this case, reported below
        outcome, message = f"crashed ({type(exc).__name__})", str(exc)[:200]
    finally:
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    short = len(message) <= MESSAGE_LIMIT and "\n" not in message and message.isprintable()
    ok = outcome in ("read", "refused") and short and elapsed < TIME_BUDGET_S and peak < MEMORY_BUDGET
    return ok, f"{outcome} in {elapsed:.3f} s, peak {peak >> 10} KiB: {message[:120]}"


PAD = 64 << 20  # sparse zeros after the model, so a misread length can point inside the file


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, int]:
    path = write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")
    return path.read_bytes(), gguf.GGUFReader(path).data_offset


@pytest.fixture(scope="module")
def fields(model: tuple[bytes, int], tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, int, int]]:
    """(key, offset of its type id, offset of its value) for every metadata entry."""
    path = tmp_path_factory.mktemp("gguf") / "fields.gguf"
    path.write_bytes(model[0])
    out = []
    for key, field in gguf.GGUFReader(path).fields.items():
        if key.startswith("GGUF."):
            continue
        type_at = field.offset + 8 + len(key.encode())
        out.append((key, type_at, type_at + 4))
    return out


def _targeted(data: bytes, fields: list[tuple[str, int, int]]) -> list[bytes]:
    """Every metadata entry's type id changed to every other type; every u32 hyper-parameter at extremes."""
    out: list[bytes] = []
    for _key, type_at, value_at in fields:
        current = struct.unpack_from("<I", data, type_at)[0]
        for new_type in range(13):
            if new_type != current:
                out.append(data[:type_at] + struct.pack("<I", new_type) + data[type_at + 4:])
        if current == 4:  # UINT32: a count or size
            for value in (0, 2**31, 2**32 - 1):
                out.append(data[:value_at] + struct.pack("<I", value) + data[value_at + 4:])
    return out


def _mutations(data: bytes, header_end: int, rng: random.Random) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(150):  # single bit flips in the header
        pos = rng.randrange(4, header_end)
        mutated = bytearray(data)
        mutated[pos] ^= 1 << rng.randrange(8)
        out.append(bytes(mutated))
    for _ in range(120):  # an extreme length or count anywhere in the header
        pos = rng.randrange(8, header_end - 8)
        value = rng.choice([*EXTREMES_64, len(data), len(data) - pos])
        out.append(data[:pos] + struct.pack("<Q", value) + data[pos + 8:])
    for _ in range(80):  # a value or tensor type id changed
        pos = rng.randrange(8, header_end - 4)
        out.append(data[:pos] + struct.pack("<I", rng.choice(EXTREMES_32)) + data[pos + 4:])
    for _ in range(50):  # cut short, or a chunk of the header repeated
        pos = rng.randrange(0, len(data))
        out.append(data[:pos] if rng.random() < 0.5 else data[:pos] + data[pos:pos + 64] * 3 + data[pos:])
    return out


@pytest.mark.slow
def test_generated_mutated_headers_stay_within_budget(model: tuple[bytes, int], fields: list[tuple[str, int, int]],
                                                     tmp_path: Path) -> None:
    data, header_end = model
    cases = _mutations(data, header_end, random.Random(1919)) + _targeted(data, fields)
    handled, failures = 0, []
    path = tmp_path / "mutated.gguf"
    for number, case in enumerate(cases):
        with path.open("wb") as f:
            f.write(case)
            if number % 2:
                f.truncate(len(case) + PAD)
        ok, what = _within_budget(path)
        handled += ok
        if not ok:
            failures.append(what)
    assert not failures, failures[:6]
    tally("mutated GGUF headers", len(cases), handled)


def _flip_type(data: bytes, key: str, new_type: int) -> bytes:
    name = key.encode()
    pos = data.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
    return data[:pos] + struct.pack("<I", new_type) + data[pos + 4:]


def test_issue_flipped_type_byte_bool_read_as_string(model: tuple[bytes, int], tmp_path: Path) -> None:
    data, _ = model
    path = tmp_path / "flipped.gguf"
    path.write_bytes(_flip_type(data, "tokenizer.ggml.add_bos_token", 8))
    ok, what = _within_budget(path)
    assert ok, what


def test_issue_flipped_type_byte_with_a_huge_length_inside_the_file(tmp_path: Path) -> None:
    """The bool's byte and what follows read as a 130-million-byte string that the (sparse) file holds."""
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, 2)
    key = b"general.flag"
    body = struct.pack("<Q", len(key)) + key + struct.pack("<I", 8) + struct.pack("<Q", 130_000_000)
    path = tmp_path / "huge.gguf"
    with path.open("wb") as f:
        f.write(header + body)
        f.truncate(200_000_000)  # sparse: no disk used
    ok, what = _within_budget(path)
    assert ok, what
    with pytest.raises(GGUFError) as info:
        read_gguf_metadata(path)
    assert len(str(info.value)) <= MESSAGE_LIMIT


def test_issue_block_count_0xffffffff_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "blocks.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(0xFFFFFFFF)
    writer.add_context_length(512)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    ok, what = _within_budget(path)
    assert ok, what
    with pytest.raises(GGUFError, match=r"llama\.block_count is 4,294,967,295, outside 0 to 65,536"):
        read_gguf_metadata(path)


def test_long_garbage_names_are_quoted_as_a_short_excerpt(tmp_path: Path) -> None:
    key = b"\x1b]0;pwned\x07" + b"k" * 5000
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key + struct.pack("<I", 99)
    path = tmp_path / "name.gguf"
    path.write_bytes(data + bytes(64))
    with pytest.raises(GGUFError) as info:
        read_gguf_metadata(path)
    message = str(info.value)
    assert "\x1b" not in message and len(message) <= MESSAGE_LIMIT


def test_honest_model_still_reads(model: tuple[bytes, int], tmp_path: Path) -> None:
    path = tmp_path / "ok.gguf"
    path.write_bytes(model[0])
    meta = read_gguf_metadata(path)
    assert isinstance(meta, GGUFMetadata) and meta.block_count == 2 and meta.bos_token == "<s>"


@pytest.mark.slow
def test_issue_flipped_bool_to_string_on_the_real_model(smollm2: Path, tmp_path: Path) -> None:
    """The issue's case on SmolLM2: a bool read as a string once took 15 s, 1.8 GB and printed 130 M characters."""
    reader = gguf.GGUFReader(smollm2)
    bools = [(key, field.offset + 8 + len(key.encode())) for key, field in reader.fields.items()
             if field.types and field.types[0] == gguf.GGUFValueType.BOOL]
    del reader
    assert bools, "SmolLM2 has bool metadata"
    data = bytearray(smollm2.read_bytes())
    path = tmp_path / "flipped.gguf"
    for key, type_at in bools:
        original = data[type_at:type_at + 4]
        data[type_at:type_at + 4] = struct.pack("<I", 8)
        path.write_bytes(data)
        data[type_at:type_at + 4] = original
        ok, what = _within_budget(path)
        assert ok, f"{key}: {what}"
