"""Start real `hearth rpc-server` processes on loopback for tests, and stop them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RpcServer:
    """One `hearth rpc-server` child process."""

    process: subprocess.Popen[str]
    port: int
    banner: str

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def rss(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def start_rpc_server(*args: str, threads: int = 1, timeout: float = 60.0) -> RpcServer:
    """Run `hearth rpc-server --port P ...` and wait until it says it listens."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "rpc-server", "--port", str(port), "--threads", str(threads), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "listening on" in line:
            return RpcServer(process, port, line.strip())
        if not line and process.poll() is not None:
            break
    process.kill()
    err = process.stderr.read() if process.stderr else ""
    raise AssertionError(f"hearth rpc-server did not start: {err[-2000:]}")
