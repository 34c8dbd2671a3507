"""``hearth prompt`` prints the exact prompt string, in command-line turn order, as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.engine.tiny_gguf import write_tiny_gguf


def hearth(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=60,
        env=dict(os.environ),
    )


def test_llama2_multi_turn_with_system_is_byte_exact() -> None:
    result = hearth("prompt", "llama-2-13b-chat", "--system", "Be brief.", "--user", "Hi",
                    "--assistant", "Hello!", "--user", "Bye")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]"
    )


def test_without_system_there_is_no_system_message() -> None:
    result = hearth("prompt", "stablebeluga2-70b", "--user", "Hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "### User:\nHi\n\n### Assistant:\n"


def test_gguf_path_without_template_uses_labelled_fallback(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "bare.gguf")
    result = hearth("prompt", str(path), "--user", "a", "--assistant", "b", "--user", "c",
                    "--show-format")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n"
        "<|im_start|>user\nc<|im_end|>\n<|im_start|>assistant\n"
    )
    assert "a guess" in result.stderr


def test_bad_model_and_hostile_template_are_one_line_errors(tmp_path: Path) -> None:
    missing = hearth("prompt", str(tmp_path / "missing.gguf"), "--user", "x")
    assert missing.returncode == 1
    assert missing.stderr.startswith("hearth: error:") and "does not exist" in missing.stderr
    evil = write_tiny_gguf(tmp_path / "evil.gguf", name="Evil",
                           chat_template="{{ cycler.__init__.__globals__.os.getcwd() }}")
    result = hearth("prompt", str(evil), "--user", "x")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Evil" in result.stderr and "unsafe" in result.stderr
