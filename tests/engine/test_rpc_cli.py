"""`hearth rpc-server`, `--rpc` and `--version` as real subprocesses: loopback by default, one-line errors."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from tests.engine.rpc_servers import free_port, start_rpc_server
from tests.engine.tiny_gguf import write_tiny_gguf


def hearth(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


def test_version_says_whether_rpc_is_available() -> None:
    result = hearth("--version")
    assert result.returncode == 0
    assert "RPC available (protocol 7.0.0)" in result.stdout


def test_rpc_server_listens_on_loopback_by_default() -> None:
    server = start_rpc_server()
    try:
        listening = [c.laddr for c in psutil.Process(server.process.pid).net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
        assert ("127.0.0.1", server.port) in [(a.ip, a.port) for a in listening]
        assert "listening on 127.0.0.1" in server.banner and "serving CPU" in server.banner
    finally:
        server.stop()


def test_any_other_address_prints_the_warning_and_the_ssh_tunnel() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "app", "rpc-server", "--host", "0.0.0.0",
                                "--port", str(port), "--threads", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = "x"
        while line and "listening on" not in line:  # llama.cpp's own lines come too
            line = process.stdout.readline()
        assert "listening on 0.0.0.0" in line
    finally:
        process.kill()
        _, err = process.communicate(timeout=10)
    assert "WARNING: listening on 0.0.0.0" in err and "NO authentication" in err
    assert f"ssh -N -L {port}:127.0.0.1:{port}" in err


def test_a_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = hearth("rpc-server", "--port", str(port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_chat_with_a_closed_port_names_the_machine(tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "tiny.gguf")
    port = free_port()
    result = hearth("chat", str(model), "-p", "hi", "--no-save", "--rpc", f"127.0.0.1:{port}")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"hearth: error: 127.0.0.1:{port}: nothing is listening there")
    assert result.stdout == ""


def test_chat_with_another_protocol_version_names_the_machine_and_both_versions(tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "tiny.gguf")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def old_server() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(9 + 24, socket.MSG_WAITALL)
            conn.sendall(struct.pack("<Q", 28) + bytes([6, 0, 0, 0]) + bytes(24))
            conn.recv(1)

    threading.Thread(target=old_server, daemon=True).start()
    try:
        result = hearth("chat", str(model), "-p", "hi", "--no-save", "--rpc", f"127.0.0.1:{port}")
    finally:
        server.close()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"127.0.0.1:{port} speaks RPC protocol 6.0.0, this Hearth speaks 7.0.0" in result.stderr


@pytest.mark.parametrize("value", ["studio:notaport", "[::1]:50052"])
def test_a_bad_rpc_address_is_one_line(tmp_path: Path, value: str) -> None:
    model = write_tiny_gguf(tmp_path / "tiny.gguf")
    result = hearth("chat", str(model), "-p", "hi", "--no-save", "--rpc", value)
    assert result.returncode == 1
    assert result.stderr.startswith("hearth: error: ") and len(result.stderr.strip().splitlines()) == 1


def test_an_unknown_device_lists_the_ones_here() -> None:
    result = hearth("rpc-server", "--device", "NOPE", "--port", str(free_port()))
    assert result.returncode == 1
    line = result.stderr.strip()
    assert line.startswith("hearth: error: no device named 'NOPE' here; this machine has: ") and "CPU" in line
    assert "\n" not in line
