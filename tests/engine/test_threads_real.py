"""Real llama.cpp replies with threads "auto" and fixed, and the tuner changing counts between decode calls."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import llama_cpp
import pytest

from app.engine.client import EngineClient
from app.engine.llama_runner import LlamaRunner, LogTail
from app.engine.protocol import LoadSettings, SamplingSettings
from app.engine.thread_start import CoreCount, start_point
from app.engine.thread_tuner import ThreadControl

pytestmark = pytest.mark.slow

GREEDY = SamplingSettings(temperature=0, repeat_penalty=1.0, max_tokens=24, ignore_eos=True)
PROMPT = "<|im_start|>user\nName three rivers.<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("threads", ["auto", 1])
def test_real_reply_reports_its_threads(smollm2: Path, threads: int | str | None) -> None:
    with EngineClient() as client:
        info = client.load_model(LoadSettings(str(smollm2), n_ctx=1024, n_threads=threads))  # type: ignore[arg-type]
        text = "".join(client.stream(PROMPT, (), GREEDY))
        stats = client.last_stats
    assert text.strip()
    assert stats is not None and stats.generated_tokens == 24
    assert info.threads is not None and stats.threads is not None
    if isinstance(threads, int):
        assert info.threads.mode == stats.threads.mode == "fixed"
        assert stats.threads.n_threads == stats.threads.n_threads_batch == threads
        assert info.threads.describe() == f"CPU: {threads} thread{'s' * (threads > 1)} (fixed in settings)"
    else:
        assert info.threads.mode == "auto"
        assert 1 <= info.threads.n_threads <= info.threads.cores
        assert "physical core" in info.threads.reason or "performance core" in info.threads.reason


class Script:
    """A fake clock in which 1 thread is three times faster than 2 (the issue's busy machine)."""

    def __init__(self, runner: LlamaRunner) -> None:
        self.runner = runner
        self.now = 0.0

    def clock(self) -> float:
        threads = self.runner.threads
        n = threads.counts[0] if threads is not None else 1
        self.now += 0.06 if n == 2 else 0.02  # each read is one token's worth: close enough
        return self.now

    def cpu(self) -> float:
        return self.now * 0.5


def test_tuner_switches_threads_mid_reply_in_real_llama_cpp(smollm2: Path) -> None:
    """The hook calls llama_set_n_threads between decode calls and the reply goes on unharmed."""
    runner = LlamaRunner(LoadSettings(str(smollm2), n_ctx=1024, n_threads=2), LogTail.install())
    runner.load()
    try:
        script = Script(runner)
        applied: list[tuple[int, int]] = []
        ctx = runner.ctx

        def apply(n: int, n_batch: int) -> None:
            applied.append((n, n_batch))
            llama_cpp.llama_set_n_threads(ctx, n, n_batch)

        runner.threads = ThreadControl(start_point(CoreCount(2, "2 physical cores"), 0.0), None, apply,
                                       clock=script.clock, cpu_clock=script.cpu)
        sampling = SamplingSettings(temperature=0, repeat_penalty=1.0, max_tokens=80, ignore_eos=True)
        pieces: list[str] = []
        stats = runner.generate(PROMPT, (), sampling, lambda text, _n: pieces.append(text))
        assert stats.generated_tokens == 80
        assert (1, 2) in applied  # moved decoding down to 1 thread while replying; prompts keep 2
        assert llama_cpp.llama_n_threads(ctx) == applied[-1][0]  # the last change reached llama.cpp
        assert llama_cpp.llama_n_threads_batch(ctx) == 2
        assert stats.threads is not None and stats.threads.n_threads == 1
        assert "faster" in stats.threads.reason
        assert "".join(pieces).strip()
    finally:
        runner.close()


def test_cli_threads_auto_fixed_and_bad(smollm2: Path) -> None:
    env = dict(os.environ)
    for value, expected in (("auto", "(auto: "), ("1", "CPU: 1 thread (fixed in settings)")):
        result = subprocess.run(
            [sys.executable, "-m", "app", "chat", str(smollm2), "-p", "Say hi.", "--max-tokens", "8",
             "--threads", value, "--verbose", "--no-save", "--ctx", "1024"],
            capture_output=True, text=True, timeout=180, env=env)
        assert result.returncode == 0, result.stderr
        assert expected in result.stderr
        assert result.stdout.strip()
    bad = subprocess.run([sys.executable, "-m", "app", "chat", str(smollm2), "-p", "hi", "--threads", "0"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode != 0
    assert "threads must be 'auto' or a whole number of at least 1" in bad.stderr
    assert "Traceback" not in bad.stderr
