"""Tokens/s through `hearth serve`'s API against the engine's own figure (what `hearth bench` measures).

Both sides decode the same prompt greedily (no repeat penalty, EOS ignored) with the same context
and threads; the rounds alternate, and the best of each is kept (other load only slows a round).
The API figure is what a client sees: streamed chunks over HTTP, timed from the first to the last.
With llama.cpp's own ``llama-server`` (built by bench/reference_tools.sh into the test-asset cache,
or ``--llama-server PATH``), its stream of the same request is measured the same way, in the same
alternating rounds: the server a user would run instead.

    PYTHONPATH=. .venv/bin/python bench/api_bench.py [MODEL] [--tokens 128] [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx

from app.engine.benchmark import BENCH_PROMPT
from app.engine.client import EngineClient
from app.engine.protocol import LoadSettings, SamplingSettings
from app.server.engine_bridge import EngineBridge
from app.server.runner import BackgroundServer, ServerSettings


def engine_round(client: EngineClient, prompt: str, tokens: int, index: int) -> float:
    greedy = SamplingSettings(temperature=0, repeat_penalty=1.0, max_tokens=tokens, ignore_eos=True)
    for _ in client.stream(prompt, (), greedy, chat_id=f"engine-{index}"):
        pass
    stats = client.last_stats
    assert stats is not None
    return stats.decode_tps


def stream_chunks(url: str, body: dict[str, object]) -> Iterator[tuple[float, dict[str, Any]]]:
    """Each streamed chunk of a completions request, with the time it arrived."""
    with httpx.Client(timeout=600) as http, http.stream("POST", url, json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data:") and not line.endswith("[DONE]"):
                yield time.perf_counter(), json.loads(line[5:])


def _has_text(chunk: dict[str, Any]) -> bool:
    return any(c.get("text") for c in chunk.get("choices", []))


def api_round(url: str, model: str, prompt: str, tokens: int) -> float:
    """Hearth's API batches tokens into chunks: the usage's token count over the time they took."""
    body = {"model": model, "prompt": prompt, "max_tokens": tokens, "temperature": 0, "repeat_penalty": 1.0,
            "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
    first = last = 0.0
    generated = 0
    for at, chunk in stream_chunks(f"{url}/completions", body):
        if chunk.get("usage"):
            generated = chunk["usage"]["completion_tokens"]
        if _has_text(chunk):
            first, last = first or at, at
    return (generated - 1) / (last - first) if last > first else 0.0


def llama_server_round(url: str, prompt: str, tokens: int) -> float:
    """llama-server streams one chunk per token: chunks after the first over the time they took."""
    body = {"prompt": prompt, "max_tokens": tokens, "temperature": 0, "repeat_penalty": 1.0,
            "ignore_eos": True, "stream": True, "cache_prompt": False}
    stamps = [at for at, chunk in stream_chunks(f"{url}/v1/completions", body) if _has_text(chunk)]
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0


def default_llama_server() -> Path | None:
    from tests.assets import assets_dir

    path = assets_dir() / "llama.cpp-tools" / "bin" / "llama-server"
    return path if path.is_file() else None


def start_llama_server(binary: Path, model: Path, ctx: int, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [str(binary), "-m", str(model), "-c", str(ctx), "-t", str(threads), "-np", "1",
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("llama-server did not become ready within 120 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="a .gguf file (default: the test model, SmolLM2-135M Q4_1)")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--llama-server", type=Path, help="llama.cpp's llama-server binary (default: the "
                        "one bench/reference_tools.sh built, when present)")
    args = parser.parse_args()
    if args.model:
        path = Path(args.model)
    else:
        from tests.assets import smollm2_path

        path = smollm2_path()
    prompt = " ".join([BENCH_PROMPT] * 4)
    bridge = EngineBridge(load_options={"ctx": args.ctx, "n_threads": args.threads})
    served = bridge.preload(str(path))
    server = BackgroundServer(bridge, ServerSettings(port=0)).start()
    engine_tps: list[float] = []
    api_tps: list[float] = []
    reference_tps: list[float] = []
    binary = args.llama_server or default_llama_server()
    reference = start_llama_server(binary, path, args.ctx, args.threads) if binary else None
    try:
        with EngineClient() as client:
            client.load_model(LoadSettings(str(path), n_ctx=args.ctx, n_threads=args.threads))
            for index in range(args.rounds):
                engine_tps.append(engine_round(client, prompt, args.tokens, index))
                api_tps.append(api_round(server.url, served.id, prompt, args.tokens))
                if reference is not None:
                    reference_tps.append(llama_server_round(reference[1], prompt, args.tokens))
    finally:
        server.stop()
        if reference is not None:
            reference[0].terminate()
            reference[0].wait(10)
    engine, api = max(engine_tps), max(api_tps)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"model {path.name}, {args.tokens} tokens x {args.rounds} rounds, {args.threads} threads, "
          f"ctx {args.ctx}, load average {load:.1f}")
    print(f"engine (hearth bench's decode): {engine:.1f} tok/s   rounds {[round(t, 1) for t in engine_tps]}")
    print(f"through the API (stream):      {api:.1f} tok/s   rounds {[round(t, 1) for t in api_tps]}")
    if reference_tps:
        best = max(reference_tps)
        print(f"llama.cpp's llama-server (stream): {best:.1f} tok/s   rounds {[round(t, 1) for t in reference_tps]}")
        print(f"Hearth's API / llama-server: {api / best:.2f}x")
    else:
        print("llama-server: not built (bench/reference_tools.sh builds it), not compared")
    print(f"API / engine: {api / engine:.2f}x (target >= 0.90x)")
    return 0 if api >= 0.9 * engine else 1


if __name__ == "__main__":
    sys.exit(main())
