"""Hearth's adaptive threads against llama.cpp's default thread count, idle and under busy processes (prints Markdown).

Usage: python bench/thread_bench.py [--loads 0 2] [--models smollm2 synthetic] [--threads auto 2] [--quick]
Each configuration is one ``hearth bench MODEL --load N --threads T --json`` run (alternating rounds
of Hearth and a bare llama.cpp loop at its default threads); "--threads 2" is Hearth before this
change (a fixed count of physical cores), "auto" after it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.synthetic_model import synthetic_model_path  # noqa: E402
from tests.assets import smollm2_path  # noqa: E402

# (tokens, rounds) per model: the 1.1B model decodes ~10x slower than SmolLM2.
SIZES = {"smollm2": (128, 6), "synthetic": (32, 4)}
QUICK = {"smollm2": (64, 3), "synthetic": (16, 2)}


def run_one(model: Path, load: int, threads: str, tokens: int, rounds: int) -> dict[str, object]:
    command = [sys.executable, "-m", "app", "bench", str(model), "--json", "--load", str(load),
               "--threads", threads, "--tokens", str(tokens), "--rounds", str(rounds), "--ctx", "2048"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr}")
    result: dict[str, object] = json.loads(done.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--models", nargs="+", default=["smollm2", "synthetic"], choices=["smollm2", "synthetic"])
    parser.add_argument("--threads", nargs="+", default=["auto", "2"])
    parser.add_argument("--quick", action="store_true", help="fewer tokens and rounds (a busy machine)")
    args = parser.parse_args()
    paths = {"smollm2": smollm2_path(), "synthetic": synthetic_model_path()}
    sizes = QUICK if args.quick else SIZES
    print("| Model | Busy processes | Hearth threads | Hearth tok/s | llama.cpp default (threads) tok/s "
          "| Ratio (medians) | Ratio (best) | Hearth chose | Load avg before → after |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        tokens, rounds = sizes[name]
        for load in args.loads:
            for threads in args.threads:
                r = run_one(paths[name], load, threads, tokens, rounds)
                print(f"| {r['model']} | {load} | {threads} | {r['decode_tps']} | {r['raw_decode_tps']} "
                      f"({r['raw_threads']}) | {r['decode_ratio']} | {r['decode_ratio_best']} "
                      f"| {r['hearth_threads']} | {r['loadavg_before']} → {r['loadavg_after']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
