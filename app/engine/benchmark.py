"""Reference figures for ``hearth bench``: a bare low-level llama.cpp decode loop and a scripted chat."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import llama_cpp

from app.engine.llama_runner import amx_cpu
from app.engine.templates import Message

BENCH_PROMPT = (
    "You are a careful writer. Write a long, detailed story about a lighthouse keeper who "
    "finds a message in a bottle, describing the sea, the weather and the keeper's memories."
)

# Ten user turns; with short replies the history passes 1,500 tokens by turn 10.
CHAT_TOPIC = (
    "Here are my notes for today, please keep them in mind: the garden needs water in the "
    "morning, the tomatoes are turning red, the neighbour asked about borrowing the ladder, "
    "the library books are due on Friday, and the bicycle tyre is still flat after the rain. "
    "Also remember that the oven timer is broken and the cat should not go outside at night. "
)
CHAT_TURNS = tuple(f"{CHAT_TOPIC}Question {n}: what should I do first, and why?" for n in range(1, 11))


@dataclass(frozen=True)
class RawResult:
    decode_tps: float
    prompt_tps: float
    generated: int


def raw_decode(
    path: str, *, n_ctx: int, n_threads: int, n_tokens: int, prompt: str, n_batch: int = 512
) -> RawResult:
    """llama.cpp's low-level API in this process: greedy sampler chain, ``n_tokens`` tokens, EOS ignored.

    The same work per token as Hearth's worker (sample, piece to text, decode) with nothing
    else: no process boundary, no protocol, no stop strings.
    """
    mparams = llama_cpp.llama_model_default_params()
    mparams.n_gpu_layers = 0
    mparams.use_extra_bufts = not amx_cpu()  # as Hearth's worker does (AMX crashes on some VMs)
    model = llama_cpp.llama_model_load_from_file(path.encode(), mparams)
    if not model:
        raise RuntimeError(f"could not load {path}")
    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx = n_ctx
    cparams.n_batch = n_batch
    cparams.n_ubatch = min(n_batch, 512)
    cparams.n_threads = cparams.n_threads_batch = n_threads
    cparams.no_perf = True
    ctx = llama_cpp.llama_init_from_model(model, cparams)
    vocab = llama_cpp.llama_model_get_vocab(model)
    chain_params = llama_cpp.llama_sampler_chain_default_params()
    chain = llama_cpp.llama_sampler_chain_init(chain_params)
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
    try:
        raw = prompt.encode()
        tokens = (llama_cpp.llama_token * (len(raw) + 8))()
        n = llama_cpp.llama_tokenize(vocab, raw, len(raw), tokens, len(raw) + 8, True, True)
        start = time.perf_counter()
        for offset in range(0, n, n_batch):
            ids = tokens[offset : min(n, offset + n_batch)]
            chunk = (llama_cpp.llama_token * len(ids))(*ids)
            llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(chunk, len(chunk)))
        prompt_s = time.perf_counter() - start
        one = (llama_cpp.llama_token * 1)()
        batch = llama_cpp.llama_batch_get_one(one, 1)
        piece = ctypes.create_string_buffer(256)
        text = bytearray()
        first = last = time.perf_counter()
        for index in range(n_tokens):
            token = llama_cpp.llama_sampler_sample(chain, ctx, -1)
            if index == 0:
                first = time.perf_counter()
            length = llama_cpp.llama_token_to_piece(vocab, token, piece, 256, 0, False)
            text += piece.raw[: max(0, length)]
            last = time.perf_counter()
            if index == n_tokens - 1:
                break
            one[0] = token
            llama_cpp.llama_decode(ctx, batch)
        return RawResult(
            decode_tps=(n_tokens - 1) / (last - first), prompt_tps=n / prompt_s, generated=n_tokens
        )
    finally:
        llama_cpp.llama_sampler_free(chain)
        llama_cpp.llama_free(ctx)
        llama_cpp.llama_model_free(model)


def chat_history(turn: int, replies: list[str]) -> list[Message]:
    """The scripted conversation up to user turn ``turn`` (1-based), with earlier replies."""
    messages: list[Message] = []
    for index in range(turn):
        messages.append(Message("user", CHAT_TURNS[index]))
        if index < turn - 1:
            messages.append(Message("assistant", replies[index]))
    return messages


# A busy process that ends by itself: at its deadline, or as soon as the bench that started it is gone.
_BUSY_LOOP = """
import os, sys, time
deadline = time.monotonic() + float(sys.argv[1])
parent = int(sys.argv[2])
while time.monotonic() < deadline and os.getppid() == parent:
    for _ in range(200000):
        pass
"""


class BusyLoad:
    """``n`` CPU-bound processes (like ``yes > /dev/null``), bounded in time and always ended on exit."""

    def __init__(self, n: int, limit_s: float) -> None:
        self.n = n
        self.limit_s = limit_s
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> BusyLoad:
        for _ in range(self.n):
            self.processes.append(subprocess.Popen(
                [sys.executable, "-c", _BUSY_LOOP, str(self.limit_s), str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return self

    def alive(self) -> int:
        return sum(process.poll() is None for process in self.processes)

    def __exit__(self, *_exc: object) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
