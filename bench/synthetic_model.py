"""Write (once) the synthetic 1.1B-parameter Q4_0 llama for ``hearth bench`` into the asset cache; print its path."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.assets import assets_dir
from tests.engine.tiny_gguf import write_synthetic_llama

FILE_NAME = "synthetic-llama-1.1b-Q4_0.gguf"


def synthetic_model_path() -> Path:
    """The synthetic model in the asset cache, written on first use (a few seconds; about 0.6 GB)."""
    path = assets_dir() / FILE_NAME
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        write_synthetic_llama(partial)
        partial.replace(path)
    return path


if __name__ == "__main__":
    started = time.perf_counter()
    model = synthetic_model_path()
    print(f"{model} ({model.stat().st_size / 1e9:.2f} GB, {time.perf_counter() - started:.1f} s)")
