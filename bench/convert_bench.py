"""GPTQ-to-GGUF conversion benchmark: time and peak RSS of exact vs requantised conversions, and quality figures.

Writes synthetic 4-bit GPTQ llama checkpoints (Llama-2-7B layer shapes, random packed weights, symmetric,
group 128) of a few sizes into a temporary folder: with g_idx in order (converts exactly into Q4_0) and
with act order permuting the groups (requantised). Converts each in a child process and records wall
time, that process's peak resident memory and the peak of its llama.cpp children (requantising and
measuring). Then converts tiny trained-shape test checkpoints (tests/convert/tiny_gptq.py) and reports
KL divergence and top-1 agreement against the exact F16 model: exact vs requantised. Deletes everything.

    .venv/bin/python bench/convert_bench.py [--sizes 0.5 2] [--quality-size 0.5] [--quality-tokens 128]
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
from typing import Any

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


def tensor_data(name: str, dtype: str, shape: tuple[int, ...], rng: np.random.Generator,
                permuted: bool = True) -> np.ndarray:
    if name.endswith(".qweight"):
        return rng.integers(-(2**31), 2**31, size=shape, dtype=np.int32)
    if name.endswith(".qzeros"):
        return np.full(shape, 0x77777777, dtype=np.int32)  # v1 zeros 7 -> 8, symmetric 4-bit
    if name.endswith(".scales"):
        return (rng.random(shape, dtype=np.float32) * 0.01 + 0.001).astype(np.float16)
    if name.endswith(".g_idx"):
        order = rng.permutation(shape[0]) if permuted else np.arange(shape[0])
        return order.astype(np.int32) // GROUP
    return (rng.standard_normal(shape, dtype=np.float32) * 0.02 + (1 if "norm" in name else 0)).astype(np.float16)


def write_checkpoint(folder: Path, gigabytes: float, tokenizer_model: bytes, permuted: bool = True) -> int:
    """Stream a checkpoint of about ``gigabytes`` to disk one tensor at a time; return its byte size."""
    rng = np.random.default_rng(0)
    per_layer = sum(int(np.prod(shape)) * (4 if dtype == "I32" else 2) for _, dtype, shape in layer_specs(0))
    layers = max(1, round(gigabytes * 1e9 / per_layer))
    vocab = 400
    specs = [("model.embed_tokens.weight", "F16", (vocab, HIDDEN))]
    for layer in range(layers):
        specs += layer_specs(layer)
    specs += [("model.norm.weight", "F16", (HIDDEN,)), ("lm_head.weight", "F16", (vocab, HIDDEN))]
    header: dict[str, Any] = {}
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
            handle.write(tensor_data(name, dtype, shape, rng, permuted).tobytes())
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
import json, resource, sys, time
from pathlib import Path
from app.convert import run_conversion
start = time.perf_counter()
result = run_conversion(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] or None, quality_tokens=int(sys.argv[4]))
print(json.dumps({"seconds": time.perf_counter() - start, "type": result.out_type, "mode": result.mode,
                  "kl": result.quality.kl_mean if result.quality else None,
                  "top1": result.quality.top1 if result.quality else None,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "children_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def convert_in_child(folder: Path, out: Path, out_type: str | None, quality_tokens: int) -> dict[str, Any]:
    """One conversion in a fresh process: seconds, type, mode, quality, peak RSS of it and of its children."""
    result = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(out), out_type or "", str(quality_tokens)],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    row: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return row


def quality_figures(tokens: int) -> list[dict[str, Any]]:
    """Exact vs requantised on the tiny test checkpoints (hidden 512, 4 layers): KL and top-1 vs F16."""
    from app.convert import run_conversion
    from tests.convert.tiny_gptq import GptqConfig, build_checkpoint, train_tokenizer

    tokenizer_model = train_tokenizer()
    rows = []
    cases = [(GptqConfig(4, 128, False, True, "gptq"), [None, "q4_k_m"]),
             (GptqConfig(3, 128, False, False, "gptq"), [None, "q3_k_m"]),
             (GptqConfig(4, 32, True, False, "gptq"), [None])]
    with tempfile.TemporaryDirectory(prefix="hearth-quality-bench-") as scratch:
        for cfg, types in cases:
            model = build_checkpoint(Path(scratch) / cfg.id, tokenizer_model, cfg, hidden=512, ffn=1024, layers=4)
            for out_type in types:
                result = run_conversion(model.folder, Path(scratch) / f"{cfg.id}.{out_type}.gguf", out_type,
                                        quality_tokens=tokens)
                assert result.quality is not None
                rows.append({"branch": cfg.id, "type": result.out_type.upper(), "mode": result.mode,
                             "kl": result.quality.kl_mean, "top1": result.quality.top1,
                             "tokens": result.quality.tokens, "choice": result.choice})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.5, 2.0],
                        help="checkpoint sizes in GB for the exact conversion (peak RSS must stay flat)")
    parser.add_argument("--quality-size", type=float, default=0.5,
                        help="size in GB at which to time every mode, quality step included (0 to skip)")
    parser.add_argument("--quality-tokens", type=int, default=128, help="tokens of the quality step")
    parser.add_argument("--no-figures", action="store_true", help="skip the quality figures of the tiny branches")
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    from tests.convert.tiny_gptq import train_tokenizer

    tokenizer_model = train_tokenizer()
    # (size, permuted g_idx, --type or None, quality tokens, label)
    jobs = [(size, False, None, 0, "exact (Q4_0), no quality step") for size in args.sizes]
    if args.quality_size:
        q, n = args.quality_size, args.quality_tokens
        jobs += [(q, False, None, n, "exact (Q4_0) + F16 reference + quality step"),
                 (q, True, "q4_k_m", 0, "requantised: F16 + llama.cpp Q4_K_M, no quality step"),
                 (q, True, None, n, "requantised: 3 types measured, best kept")]
    rows = []
    for size, permuted in sorted({(size, permuted) for size, permuted, *_ in jobs}):
        scratch = Path(tempfile.mkdtemp(prefix="hearth-convert-bench-", dir=args.tmp))
        try:
            started = time.perf_counter()
            source_bytes = write_checkpoint(scratch / "branch", size, tokenizer_model, permuted)
            print(f"wrote {source_bytes / 1e9:.2f} GB checkpoint ({'act order' if permuted else 'in order'}) in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            for job_size, job_permuted, out_type, tokens, label in jobs:
                if (job_size, job_permuted) != (size, permuted):
                    continue
                out = scratch / "out.gguf"
                row = convert_in_child(scratch / "branch", out, out_type, tokens)
                row.update(label=label, checkpoint_gb=round(source_bytes / 1e9, 2),
                           output_gb=round(out.stat().st_size / 1e9, 2),
                           mb_per_s=round(source_bytes / 1e6 / float(row["seconds"]), 1))
                print(json.dumps(row), flush=True)
                rows.append(row)
                out.unlink()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    figures = [] if args.no_figures else quality_figures(args.quality_tokens)
    print("\n| checkpoint | conversion | time | read rate | peak RSS | llama.cpp children RSS | output |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['checkpoint_gb']} GB | {row['label']} ({str(row['type']).upper()}) | "
              f"{float(row['seconds']):.1f} s | {row['mb_per_s']} MB/s | {int(row['rss_kb']) // 1024} MB | "
              f"{int(row['children_rss_kb']) // 1024 or '-'} MB | {row['output_gb']} GB |")
    print("\n| tiny branch | output | mode | KL vs F16 | top-1 vs F16 |")
    print("|---|---|---|---|---|")
    for fig in figures:
        print(f"| {fig['branch']} | {fig['type']} | {fig['mode']} | {float(fig['kl']):.2g} | "
              f"{100 * float(fig['top1']):.1f}% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
