"""Time Hearth's GGUF header reader against gguf's GGUFReader on a 150k-token vocabulary (prints figures)."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gguf

from app.formats.gguf_meta import read_gguf_metadata
from tests.engine.tiny_gguf import write_big_vocab_gguf


def best_of(n: int, path: Path) -> tuple[float, float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        read_gguf_metadata(path)
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def main() -> int:
    extra = [Path(p) for p in sys.argv[1:]]
    with tempfile.TemporaryDirectory() as tmp:
        big = write_big_vocab_gguf(Path(tmp) / "big-vocab.gguf")
        for path in [big, *extra]:
            meta = read_gguf_metadata(path)
            best, median = best_of(20, path)
            started = time.perf_counter()
            gguf.GGUFReader(path)
            reader_s = time.perf_counter() - started
            print(f"{path.name}: {meta.vocab_size:,} tokens, {len(meta.tensors)} tensors, "
                  f"BOS {meta.bos_token!r}, EOS {meta.eos_token!r}")
            print(f"  Hearth read_gguf_metadata: best {best * 1000:.1f} ms, median {median * 1000:.1f} ms")
            print(f"  gguf.GGUFReader:           {reader_s * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
