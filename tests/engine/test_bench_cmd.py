"""``hearth bench --json`` runs end to end (on a tiny model, with few tokens) and reports every figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.slow

KEYS = {
    "decode_tps", "raw_decode_tps", "decode_ratio", "prompt_tps", "ttft_turn1_s", "ttft_turn10_s",
    "max_ui_stall_ms", "rss_gui_mb", "rss_worker_mb",
}


def test_bench_json_has_every_figure(tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "tiny.gguf", context_length=4096)
    result = subprocess.run(
        [sys.executable, "-m", "app", "bench", str(model), "--json", "--tokens", "48", "--rounds", "1",
         "--turns", "2", "--chat-repeats", "1", "--ctx", "2048"],
        capture_output=True, text=True, timeout=240, env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures) >= KEYS
    assert figures["decode_tps"] > 0 and figures["raw_decode_tps"] > 0
    assert figures["decode_ratio"] == pytest.approx(
        figures["decode_tps"] / figures["raw_decode_tps"], rel=0.01, abs=0.0006)  # rounded to 3 places
    assert figures["turns"] == 2
    # Turn 2 reuses turn 1's cached tokens and evaluates only the rest.
    assert figures["turn10_reused_tokens"] >= 0.9 * figures["turn1_prompt_tokens"]
    assert figures["turn10_evaluated_tokens"] == (
        figures["turn10_history_tokens"] - figures["turn10_reused_tokens"])
    assert figures["rss_worker_mb"] > 0 and figures["rss_gui_mb"] > 0
    # Time to first token counts from Send, so it includes rendering the chat into the prompt.
    assert 0 < figures["render_turn10_ms"] < figures["ttft_turn10_s"] * 1000
