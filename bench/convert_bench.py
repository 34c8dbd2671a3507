"""GPTQ-to-GGUF conversion benchmark: throughput (MB/s of safetensors read) and peak RSS as the checkpoint grows.

Writes synthetic 4-bit GPTQ llama checkpoints (Llama-2-7B layer shapes, random packed weights, group 128,
act order on) of a few sizes into a temporary folder, converts each in a child process, records wall
time and the child's peak resident memory, and deletes everything afterwards.

    .venv/bin/python bench/convert_bench.py [--sizes 0.5 2] [--types f16 q8_0] [--requantize-size 0.5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HIDDEN, FFN, HEADS, GROUP = 4096, 11008, 32, 128
PROJECTIONS = {"self_attn.q_proj": (HIDDEN, HIDDEN), "self_attn.k_proj": (HIDDEN, HIDDEN),
               "self_attn.v_proj": (HIDDEN, HIDDEN), "self_attn.o_proj": (HIDDEN, HIDDEN),
               "mlp.gate_proj": (FFN, HIDDEN), "mlp.up_proj": (FFN, HIDDEN), "mlp.down_proj": (HIDDEN, FFN)}


def layer_specs(layer: int) -> list[tuple[str, str, tuple[int, ...]]]:
    specs: list[tuple[str, str, tuple[int, ...]]] = []
    prefix = f"model.layers.{layer}."
    for norm in ("input_layernorm", "post_attention_layernorm"):
        specs.append((prefix + norm + ".weight", "F16", (HIDDEN,)))
    for proj, (out_f, in_f) in PROJECTIONS.items():
        base = prefix + proj
        specs += [(base + ".qweight", "I32", (in_f // 8, out_f)),
                  (base + ".qzeros", "I32", (in_f // GROUP, out_f // 8)),
                  (base + ".scales", "F16", (in_f // GROUP, out_f)), (base + ".g_idx", "I32", (in_f,))]
    return specs


def tensor_data(name: str, dtype: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if name.endswith(".qweight"):
        return rng.integers(-(2**31), 2**31, size=shape, dtype=np.int32)
    if name.endswith(".qzeros"):
        return np.full(shape, 0x77777777, dtype=np.int32)  # v1 zeros 7 -> 8, symmetric 4-bit
    if name.endswith(".scales"):
        return (rng.random(shape, dtype=np.float32) * 0.01 + 0.001).astype(np.float16)
    if name.endswith(".g_idx"):
        return rng.permutation(shape[0]).astype(np.int32) // GROUP
    return (rng.standard_normal(shape, dtype=np.float32) * 0.02 + (1 if "norm" in name else 0)).astype(np.float16)


def write_checkpoint(folder: Path, gigabytes: float, tokenizer_model: bytes) -> int:
    """Stream a checkpoint of about ``gigabytes`` to disk one tensor at a time; return its byte size."""
    rng = np.random.default_rng(0)
    per_layer = sum(int(np.prod(shape)) * (4 if dtype == "I32" else 2) for _, dtype, shape in layer_specs(0))
    layers = max(1, round(gigabytes * 1e9 / per_layer))
    vocab = 400
    specs = [("model.embed_tokens.weight", "F16", (vocab, HIDDEN))]
    for layer in range(layers):
        specs += layer_specs(layer)
    specs += [("model.norm.weight", "F16", (HIDDEN,)), ("lm_head.weight", "F16", (vocab, HIDDEN))]
    header: dict[str, object] = {}
    offset = 0
    for name, dtype, shape in specs:
        size = int(np.prod(shape)) * (4 if dtype == "I32" else 2)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    folder.mkdir(parents=True)
    with (folder / "model.safetensors").open("wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        for name, dtype, shape in specs:
            handle.write(tensor_data(name, dtype, shape, rng).tobytes())
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": HIDDEN,
              "intermediate_size": FFN, "num_attention_heads": HEADS, "num_key_value_heads": HEADS,
              "num_hidden_layers": layers, "vocab_size": vocab, "max_position_embeddings": 4096,
              "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": GROUP, "desc_act": True,
                                      "sym": True}}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.model").write_bytes(tokenizer_model)
    return offset + 8 + len(raw)


CHILD = """
import resource, sys, time
from pathlib import Path
from app.convert import convert_branch
start = time.perf_counter()
convert_branch(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def convert_in_child(folder: Path, out: Path, out_type: str) -> tuple[float, float, float]:
    """(seconds, peak RSS in MB, peak RSS of llama.cpp's requantising child in MB) of one conversion."""
    result = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(out), out_type], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    seconds, max_rss_kb, child_rss_kb = result.stdout.split()
    return float(seconds), int(max_rss_kb) / 1024, int(child_rss_kb) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.5, 2.0], help="checkpoint sizes in GB")
    parser.add_argument("--types", nargs="+", default=["f16", "q8_0"], help="direct output types to time")
    parser.add_argument("--requantize-size", type=float, default=0.5,
                        help="also time F16 -> Q4_K_M at this size (0 to skip)")
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    from tests.convert.tiny_gptq import train_tokenizer

    tokenizer_model = train_tokenizer()
    rows = []
    jobs = [(size, out_type) for size in args.sizes for out_type in args.types]
    if args.requantize_size:
        jobs.append((args.requantize_size, "q4_k_m"))
    for size in sorted({size for size, _ in jobs}):
        scratch = Path(tempfile.mkdtemp(prefix="hearth-convert-bench-", dir=args.tmp))
        try:
            started = time.perf_counter()
            source_bytes = write_checkpoint(scratch / "branch", size, tokenizer_model)
            print(f"wrote {source_bytes / 1e9:.2f} GB checkpoint in {time.perf_counter() - started:.0f} s",
                  flush=True)
            for job_size, out_type in jobs:
                if job_size != size:
                    continue
                out = scratch / f"out.{out_type}.gguf"
                seconds, rss_mb, quantizer_rss_mb = convert_in_child(scratch / "branch", out, out_type)
                row = {"checkpoint_gb": round(source_bytes / 1e9, 2), "type": out_type, "seconds": round(seconds, 1),
                       "mb_per_s": round(source_bytes / 1e6 / seconds, 1), "peak_rss_mb": round(rss_mb),
                       "quantizer_rss_mb": round(quantizer_rss_mb),
                       "output_gb": round(out.stat().st_size / 1e9, 2)}
                print(json.dumps(row), flush=True)
                rows.append(row)
                out.unlink()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    print("\n| checkpoint | output | time | throughput (read) | peak RSS | llama.cpp quantizer RSS | output size |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['checkpoint_gb']} GB | {row['type'].upper()} | {row['seconds']} s | {row['mb_per_s']} MB/s | "
              f"{row['peak_rss_mb']} MB | {row['quantizer_rss_mb'] or '-'} MB | {row['output_gb']} GB |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
