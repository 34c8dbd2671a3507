"""``hearth --self-test`` and ``hearth --version``, run as the user would run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def hearth(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})


def test_version_names_the_backend() -> None:
    result = hearth("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("Hearth 0.") and "llama.cpp backend: CPU" in result.stdout


@pytest.mark.slow
def test_self_test_passes_with_a_real_model(smollm2: Path) -> None:
    result = hearth("--self-test", "--model", str(smollm2))
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert "self-test passed" in line
    assert "catalogue 6 models" in line and "catalog" in line
    assert "SmolLM2-135M-Instruct.Q4_1.gguf loaded" in line and "8 tokens at" in line
    assert "chat written and read back" in line


def test_self_test_names_the_failing_step_for_a_bad_model(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(4096))
    result = hearth("--self-test", "--model", str(bad))
    assert result.returncode == 1
    assert "self-test failed at step 'generate'" in result.stderr
    assert "Traceback" not in result.stderr


def test_self_test_without_the_starter_says_what_to_do() -> None:
    result = hearth("--self-test")
    assert result.returncode == 1
    assert "step 'model'" in result.stderr and "hearth starter" in result.stderr
