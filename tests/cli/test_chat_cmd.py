"""``hearth chat`` as a real subprocess: a streamed reply on stdout, one-line errors on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.tiny_gguf import write_tiny_gguf


def hearth(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=120,
        env=dict(os.environ), input=stdin,
    )


@pytest.mark.slow
def test_one_prompt_streams_a_reply(smollm2: Path) -> None:
    result = hearth("chat", str(smollm2), "-p", "What is the capital of France?", "--temp", "0",
                    "--max-tokens", "24", "--ctx", "1024", "--verbose")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    # The plan line: layers on the GPU, or on a build that cannot offload, "CPU only" with the reason.
    assert ("0/30 layers on GPU" in result.stderr
            or "CPU only (this llama.cpp build has no GPU support)" in result.stderr)
    assert "ChatML (from the catalogue)" in result.stderr
    assert "tok/s" in result.stderr


@pytest.mark.slow
def test_interactive_chat_keeps_the_history(tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "tiny.gguf")
    result = hearth("chat", str(model), "--max-tokens", "4", "--seed", "1", "--ctx", "256",
                    stdin="hello\nworld\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("> ") == 3  # two turns answered, then the prompt that read EOF


@pytest.mark.parametrize("kind", ["missing", "noise", "wrong-shape", "bad-layers"])
def test_errors_are_one_line_without_traceback(tmp_path: Path, kind: str) -> None:
    if kind == "missing":
        args = [str(tmp_path / "missing.gguf"), "-p", "hi"]
        expected = "does not exist"
    elif kind == "noise":
        path = tmp_path / "noise.gguf"
        path.write_bytes(os.urandom(5000))
        args, expected = [str(path), "-p", "hi"], "not a GGUF"
    elif kind == "wrong-shape":
        args = [str(write_tiny_gguf(tmp_path / "bad.gguf", wrong_shape=True)), "-p", "hi"]
        expected = "wrong shape"
    else:
        args = [str(tmp_path / "x.gguf"), "--gpu-layers", "many"]
        expected = "expected a number of layers or 'auto'"
    result = hearth("chat", *args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert expected in result.stderr
    if kind != "bad-layers":
        assert result.stderr.startswith("hearth: error:")
        assert len(result.stderr.strip().splitlines()) == 1
