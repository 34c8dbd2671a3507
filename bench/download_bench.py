"""Download benchmark: Hearth against curl for one 1 GB file on loopback, and bytes re-fetched after a kill.

    .venv/bin/python bench/download_bench.py [--size-mb 1024] [--runs 3]

The loopback Hub (tests/hub/hub_server.py) runs in its own process and serves a generated file
from a temporary folder (deleted afterwards; nothing goes into git). curl and Hearth download
the same URL in the same run. Hearth's time covers the HEAD request, the transfer, the sha256
computed while writing, and the rename; it excludes Python's start-up. curl and Hearth run in turns
(the order alternating between rounds), each after ``os.sync()`` with the previous outputs deleted;
``curl | tee | sha256sum`` (the same work as Hearth, for reference) runs in its own loop after. Then
``hearth download`` is killed with SIGKILL at 50% and run again; the server's byte count gives what
was fetched twice. The load average is printed: other work on the machine moves the figures a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "bench-model.Q4_K_M.gguf"
REPO = "local/files"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_file(path: Path, size: int) -> None:
    block = os.urandom(16 << 20)
    with path.open("wb") as f:
        f.write(b"GGUF")
        written = 4
        while written < size:
            chunk = block[: size - written]
            f.write(chunk)
            written += len(chunk)


def stats(endpoint: str, reset: bool = False) -> int:
    with urllib.request.urlopen(f"{endpoint}/_stats{'?reset=1' if reset else ''}") as response:
        return int(json.load(response)["bytes_served"].get(NAME, 0))


FETCH = """
import sys, time
from pathlib import Path
from app.hub.plan import DownloadRequest, execute, plan
from app.hub.transfer import Control
p = plan(DownloadRequest("local/files", includes=(sys.argv[1],), dest=sys.argv[2]), Path(sys.argv[2]))
start = time.perf_counter()
execute(p, Control(), lambda n: None)
print(time.perf_counter() - start)
"""


def time_hearth(env: dict[str, str], dest: Path) -> float:
    shutil.rmtree(dest, ignore_errors=True)
    out = subprocess.run([sys.executable, "-c", FETCH, NAME, str(dest)], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def time_curl(url: str, dest: Path) -> float:
    dest.unlink(missing_ok=True)
    start = time.perf_counter()
    subprocess.run(["curl", "-sS", "--fail", "-o", str(dest), url], check=True)
    return time.perf_counter() - start


def time_curl_verified(url: str, dest: Path) -> float:
    """curl doing the same work as Hearth: the file written and its sha256 computed as it arrives."""
    dest.unlink(missing_ok=True)
    start = time.perf_counter()
    subprocess.run(f"curl -sS --fail {url} | tee {dest} | sha256sum > /dev/null", shell=True, check=True)
    return time.perf_counter() - start


def clean(tmp: Path) -> None:
    """Delete the previous downloads and flush dirty pages, so every timed run starts alike."""
    (tmp / "curl.out").unlink(missing_ok=True)
    shutil.rmtree(tmp / "hearth", ignore_errors=True)
    os.sync()


def kill_at_half(env: dict[str, str], endpoint: str, dest: Path, size: int) -> tuple[int, int, int]:
    """(bytes on disk at the kill, bytes served before it, bytes served by the second run)."""
    shutil.rmtree(dest, ignore_errors=True)
    os.sync()
    stats(endpoint, reset=True)
    part = dest / f"{NAME}.partial"
    cmd = [sys.executable, "-m", "app", "download", REPO, "--include", NAME, "--dest", str(dest)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (part.exists() and part.stat().st_size >= size // 2):
        if proc.poll() is not None:
            raise SystemExit("the download ended before it was killed")
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # let the server notice the closed connection
    on_disk = part.stat().st_size
    first = stats(endpoint, reset=True)
    subprocess.run(cmd, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return on_disk, first, stats(endpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tmp", help="folder for the served file and the downloads (default: the system temp)")
    args = parser.parse_args()
    size = args.size_mb * 1024 * 1024
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="hearth-bench-", dir=args.tmp) as tmp_name:
        tmp = Path(tmp_name)
        source = tmp / "served" / NAME
        source.parent.mkdir()
        make_file(source, size)
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        env = {**os.environ, "HF_ENDPOINT": endpoint, "HEARTH_HOME": str(tmp / "home"), "PORT": str(port)}
        server = subprocess.Popen([sys.executable, "-m", "tests.hub.hub_server", str(source)], env=env, cwd=ROOT,
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            server.stdout.readline()  # the server is listening
            url = f"{endpoint}/{REPO}/resolve/main/{NAME}"
            subprocess.run([sys.executable, "-m", "app", "download", "--list", REPO], env=env, cwd=ROOT,
                           check=True, stdout=subprocess.DEVNULL)  # the server hashes the file once
            curl, curl_sha, hearth = [], [], []
            for run in range(args.runs):
                # curl and Hearth in turns, the order alternating between rounds; each download starts
                # with the previous outputs deleted and no dirty pages left (os.sync, untimed).
                pair = [(curl, lambda: time_curl(url, tmp / "curl.out")),
                        (hearth, lambda: time_hearth(env, tmp / "hearth"))]
                for times, timed in pair if run % 2 == 0 else pair[::-1]:
                    clean(tmp)
                    times.append(timed())
            for _ in range(args.runs):
                # The verified-curl reference in a loop of its own: whatever ran right after this
                # CPU-heavy pipeline was slowed (Hearth by up to 1 s, curl by ~0.15 s).
                clean(tmp)
                curl_sha.append(time_curl_verified(url, tmp / "curl.out"))
            on_disk, first, second = kill_at_half(env, endpoint, tmp / "killed", size)
        finally:
            server.terminate()
            server.wait()
    mb = size / 1e6
    c, h = statistics.median(curl), statistics.median(hearth)
    refetched = first + second - size
    load_after = os.getloadavg()
    print(f"file: {args.size_mb} MiB ({size} bytes), {args.runs} runs each, median; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after ({os.cpu_count()} CPUs)")
    print(f"curl:   {c:.2f} s  {mb / c:.0f} MB/s   (runs: {', '.join(f'{t:.2f}' for t in curl)})")
    cs = statistics.median(curl_sha)
    print(f"curl | tee | sha256sum: {cs:.2f} s  {mb / cs:.0f} MB/s   (runs: {', '.join(f'{t:.2f}' for t in curl_sha)})")
    print(f"hearth: {h:.2f} s  {mb / h:.0f} MB/s   (runs: {', '.join(f'{t:.2f}' for t in hearth)})"
          "  incl. sha256 while writing")
    print(f"hearth / curl throughput: {c / h:.2f}x; against curl with sha256sum: {cs / h:.2f}x")
    print(f"kill -9 at {on_disk / size:.0%}: first run served {first} bytes, {on_disk} on disk; "
          f"second run served {second}; fetched twice: {refetched} bytes ({refetched / size:.4%} of the file)")


if __name__ == "__main__":
    main()
