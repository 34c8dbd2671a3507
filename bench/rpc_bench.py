"""Decode speed with the model local, and split over two `hearth rpc-server`s on loopback; the split's cost.

Usage: python bench/rpc_bench.py [MODEL.gguf] [--tokens 64] [--rounds 3] [--threads 1] [--json]

Both runs go through Hearth's whole path (worker process, protocol). The local run uses
``--threads`` CPU threads; in the split run every layer lives on the two servers, each with
``--threads`` threads, and this machine only samples. On loopback the network costs almost
nothing, so the difference is the RPC round trips per token (two servers = two graph
computations in sequence, plus the logits sent back). Over a real network add one round
trip per server per token (about 0.2-1 ms on gigabit Ethernet, more over Wi-Fi).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.engine.client import EngineClient
from app.engine.protocol import LoadSettings, SamplingSettings
from app.engine.rpc import probe
from tests.engine.rpc_servers import start_rpc_server

PROMPT = ("<|im_start|>user\nWrite a long story about a lighthouse keeper who finds a message in a "
          "bottle.<|im_end|>\n<|im_start|>assistant\n")


def decode_runs(client: EngineClient, tokens: int, rounds: int) -> tuple[list[float], float]:
    """Decode tokens/s of each round (fresh chat each time) and the first round's prompt tokens/s."""
    sampling = SamplingSettings(temperature=0, repeat_penalty=1.0, max_tokens=tokens, ignore_eos=True)
    speeds = []
    prompt_tps = 0.0
    for index in range(rounds):
        for _ in client.stream(PROMPT, sampling=sampling, chat_id=f"bench-{index}"):
            pass
        stats = client.last_stats
        assert stats is not None
        speeds.append(stats.decode_tps)
        if index == 0:
            prompt_tps = stats.prompt_tps
    return speeds, prompt_tps


def measure(model: Path, tokens: int, rounds: int, threads: int) -> dict[str, object]:
    result: dict[str, object] = {"model": str(model), "tokens": tokens, "rounds": rounds, "threads": threads,
                                 "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    with EngineClient() as client:
        client.load_model(LoadSettings(str(model), n_ctx=1024, n_threads=threads))
        local, local_prompt = decode_runs(client, tokens, rounds)
        client.unload()
        servers = [start_rpc_server(threads=threads), start_rpc_server(threads=threads)]
        try:
            round_trips = [probe(s.endpoint).round_trip_s for s in servers]
            started = time.perf_counter()
            info = client.load_model(LoadSettings(str(model), n_ctx=1024, n_threads=threads, n_gpu_layers=-1,
                                                  rpc=tuple(s.endpoint for s in servers)))
            load_s = time.perf_counter() - started
            split, split_prompt = decode_runs(client, tokens, rounds)
        finally:
            client.unload()
            for server in servers:
                server.stop()
    best_local, best_split = max(local), max(split)
    result.update({
        "local_decode_tps": round(best_local, 2),
        "split_decode_tps": round(best_split, 2),
        "local_decode_tps_rounds": [round(x, 2) for x in local],
        "split_decode_tps_rounds": [round(x, 2) for x in split],
        "local_prompt_tps": round(local_prompt, 1),
        "split_prompt_tps": round(split_prompt, 1),
        "split_cost_ms_per_token": round(1000 / best_split - 1000 / best_local, 2),
        "split_cost_ms_per_token_median": round(1000 / statistics.median(split)
                                                - 1000 / statistics.median(local), 2),
        "split": info.split,
        "split_load_s": round(load_s, 2),
        "handshake_round_trip_ms": [round(x * 1000, 2) for x in round_trips],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    })
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="a .gguf (default: the SmolLM2 test model)")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.model:
        model = Path(args.model)
    else:
        from tests.assets import smollm2_path

        model = smollm2_path()
    result = measure(model, args.tokens, args.rounds, args.threads)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{model.name}: {args.tokens} tokens, best of {args.rounds}, {args.threads} thread(s) per process; "
          f"load average {result['load_average_before']}")
    print(f"  local                      {result['local_decode_tps']:.1f} tok/s decode, "
          f"{result['local_prompt_tps']:.0f} tok/s prompt")
    print(f"  split over 2 rpc-servers   {result['split_decode_tps']:.1f} tok/s decode, "
          f"{result['split_prompt_tps']:.0f} tok/s prompt  ({result['split']})")
    print(f"  cost of the split          {result['split_cost_ms_per_token']:.1f} ms per token "
          f"(medians: {result['split_cost_ms_per_token_median']:.1f} ms); handshake round trip "
          f"{result['handshake_round_trip_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
