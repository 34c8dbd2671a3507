"""``hearth bench --load N``: busy processes bounded and always ended; Hearth against llama.cpp's default threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from app.engine.benchmark import BusyLoad
from tests.engine.tiny_gguf import write_tiny_gguf


def _busy_loops_of(parent_pid: int) -> list[psutil.Process]:
    """BusyLoad processes started by ``parent_pid`` still running anywhere (orphans are re-parented to init)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if (len(cmdline) >= 5 and cmdline[1] == "-c" and cmdline[-1] == str(parent_pid)
                and process.info["status"] != psutil.STATUS_ZOMBIE):
            found.append(process)
    return found


def test_busy_processes_run_and_are_ended_on_exit() -> None:
    with BusyLoad(2, limit_s=60) as load:
        time.sleep(0.3)
        assert load.alive() == 2
        pids = [p.pid for p in load.processes]
        assert all(psutil.Process(pid).cpu_times().user >= 0 for pid in pids)
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in pids)


def test_busy_processes_end_by_themselves_at_their_limit() -> None:
    with BusyLoad(1, limit_s=0.3) as load:
        process = load.processes[0]
        process.wait(timeout=20)
        assert load.alive() == 0


@pytest.mark.slow
def test_bench_load_json_compares_with_llama_cpp_default_threads(tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "tiny.gguf", context_length=2048)
    bench = subprocess.Popen(
        [sys.executable, "-m", "app", "bench", str(model), "--json", "--load", "1", "--tokens", "24",
         "--rounds", "2", "--ctx", "1024", "--threads", "auto"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    stdout, stderr = bench.communicate(timeout=240)
    result = subprocess.CompletedProcess(bench.args, bench.returncode, stdout, stderr)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["load"] == 1 and figures["threads"] == "auto"
    assert figures["raw_threads"] == (psutil.cpu_count(logical=False) or 1)
    assert len(figures["decode_tps_rounds"]) == len(figures["raw_decode_tps_rounds"]) == 2
    assert figures["decode_ratio"] == pytest.approx(figures["decode_tps"] / figures["raw_decode_tps"], rel=0.01)
    assert figures["hearth_threads"].startswith("CPU: ")
    assert "loadavg_before" in figures
    assert _busy_loops_of(bench.pid) == [], "the bench's busy processes outlived it"


def test_bench_rejects_a_bad_thread_count(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "app", "bench", str(tmp_path / "x.gguf"), "--threads", "many"],
                            capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert result.returncode != 0
    assert "threads must be 'auto' or a whole number of at least 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_synthetic_q4_0_llama_loads_and_decodes_in_llama_cpp(tmp_path: Path) -> None:
    """The bench's 1.1B writer, at a small size: real Q4_0 blocks llama.cpp accepts and runs."""
    import gguf

    from app.engine.benchmark import raw_decode
    from tests.engine.tiny_gguf import write_synthetic_llama

    path = write_synthetic_llama(tmp_path / "synthetic.gguf", n_layer=2, n_embd=256, n_ff=512, n_head=8,
                                 n_head_kv=4, n_vocab=1000)
    types = {t.name: t.tensor_type for t in gguf.GGUFReader(path).tensors}
    assert types["blk.0.ffn_up.weight"] == gguf.GGMLQuantizationType.Q4_0
    assert types["token_embd.weight"] == gguf.GGMLQuantizationType.Q4_0
    result = raw_decode(str(path), n_ctx=256, n_threads=1, n_tokens=4, prompt="hello world the is")
    assert result.generated == 4 and result.decode_tps > 0
