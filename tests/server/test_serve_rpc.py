"""`hearth serve --rpc`: the served model's layers go to remote machines; a machine that is not there is named."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.assets import smollm2_path

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", "serve", "--port", "0", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))


@pytest.mark.slow
def test_serve_with_an_unreachable_machine_names_it_and_exits() -> None:
    port = _closed_port()
    result = _serve("--model", str(smollm2_path()), "--rpc", f"127.0.0.1:{port}")
    assert result.returncode != 0
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("hearth: error:")]
    assert len(error_lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in error_lines[0] and "rpc-server" in error_lines[0]
    assert "Traceback" not in result.stderr


def test_serve_rejects_a_malformed_machine_address() -> None:
    result = _serve("--rpc", "studio:99999")
    assert result.returncode != 0
    assert result.stderr.startswith("hearth: error:") and "Traceback" not in result.stderr
    assert "studio:99999" in result.stderr and "port" in result.stderr
