"""``hearth rpc-server``: lend this machine's CPU or GPUs to another Hearth over llama.cpp's RPC protocol."""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from app.engine.rpc import DEFAULT_PORT, LOOPBACK, PROTOCOL, is_loopback
from app.errors import HearthError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rpc-server",
        help="serve this machine's CPU or GPUs to another Hearth (split one model across machines)",
        description="Expose this machine's devices to a Hearth on another machine, which then puts "
        "part of a model's layers here (its `--rpc HOST:PORT`, or Settings > Remote machines). "
        "The RPC protocol has no authentication or encryption: by default it listens on "
        "127.0.0.1 only; reach it through an SSH tunnel, or use --host on a network you trust.",
    )
    parser.add_argument("--host", default=LOOPBACK,
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    parser.add_argument("--device", action="append", default=[], metavar="NAME",
                        help="serve this device (CPU, CUDA0, Metal, Vulkan0...; repeat or comma-separate); "
                        "default: every GPU, else the CPU")
    parser.add_argument("--cache", nargs="?", const="", default=None, metavar="DIR",
                        help="keep received weights in DIR (default: Hearth's cache folder), so that "
                        "reloading the same model does not send them over the network again")
    parser.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    parser.add_argument("--list-devices", action="store_true", help="list this machine's devices and exit")
    parser.set_defaults(func=run)


def tunnel_hint(port: int) -> str:
    return (f"    ssh -N -L {port}:127.0.0.1:{port} you@this-machine\n"
            f"  then, on the machine that chats:  hearth chat MODEL --rpc 127.0.0.1:{port}")


def exposure_warning(host: str, port: int) -> str:
    """What `hearth rpc-server --host` prints for any address other than loopback."""
    return (
        f"WARNING: listening on {host}:{port}, reachable from other machines.\n"
        "  llama.cpp's RPC server has NO authentication and NO encryption, and it has known,\n"
        "  unfixed memory-safety bugs: anyone who can reach this port can read what you compute\n"
        "  and may run code as your user. Use it only on a network you trust completely.\n"
        f"  Safer: keep the default --host {LOOPBACK} and reach it through an SSH tunnel:\n"
        + tunnel_hint(port)
    )


def _bind_address(host: str) -> str:
    """llama.cpp binds numeric IPv4 only: resolve a name, refuse what cannot work."""
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror:
        raise HearthError(f"cannot listen on {host!r}: not an IPv4 address or a known host name "
                          f"(use {LOOPBACK}, or this machine's LAN address)") from None
    return str(infos[0][4][0])


def _check_port(address: str, port: int) -> None:
    if not 0 < port < 65536:
        raise HearthError(f"port {port} is not between 1 and 65535")
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((address, port))
    except OSError as exc:
        raise HearthError(f"cannot listen on {address}:{port}: {exc.strerror or exc} (another "
                          f"rpc-server already running? choose another --port)") from None
    finally:
        probe.close()


def _wait_listening(address: str, port: int, failed: threading.Event, timeout: float = 30.0) -> bool:
    """Wait until the server accepts connections (it then serves the next client normally)."""
    target = LOOPBACK if address == "0.0.0.0" else address
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not failed.is_set():
        try:
            socket.create_connection((target, port), timeout=1).close()
            return True
        except OSError:
            failed.wait(0.05)
    return False


def _cache_dir(option: str | None) -> str | None:
    if option is None:
        return None
    if option:
        path = Path(option).expanduser()
    else:
        from app.paths import app_dirs

        path = app_dirs().cache / "rpc"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HearthError(f"cannot use {path} as the RPC cache: {exc.strerror or exc}") from None
    return str(path)


def run(args: argparse.Namespace) -> int:
    from app.engine.llama_runner import default_threads
    from app.engine.rpc_native import described, local_devices, rpc_available, server_devices, start_server

    if not rpc_available():
        raise HearthError("this Hearth's llama.cpp was built without the RPC backend: reinstall "
                          "llama-cpp-python with CMAKE_ARGS=-DGGML_RPC=on")
    if args.list_devices:
        for dev in local_devices():
            if not dev.is_remote:
                print(f"{dev.name}: {dev.description} ({dev.free_bytes / 1e9:.1f} GB free of "
                      f"{dev.total_bytes / 1e9:.1f} GB)")
        return 0
    address = _bind_address(args.host)
    _check_port(address, args.port)
    names = [n for item in args.device for n in item.replace("/", ",").split(",") if n.strip()]
    handles = server_devices([n.strip() for n in names])
    served = [d.name for d in described(handles)]
    cache = _cache_dir(args.cache)
    if not is_loopback(address):
        print(exposure_warning(args.host, args.port), file=sys.stderr, flush=True)
    endpoint = f"{address}:{args.port}"
    threads = args.threads or default_threads()
    failed = threading.Event()

    def serve() -> None:
        start_server(endpoint, handles, cache, threads)  # returns only if it could not listen
        failed.set()

    thread = threading.Thread(target=serve, name="rpc-server", daemon=True)
    thread.start()
    if not _wait_listening(address, args.port, failed):
        raise HearthError(f"the RPC server could not listen on {endpoint} (see the messages above)")
    # llama.cpp prints the devices; this line is Hearth's own, flushed, for people and tests.
    print(f"Hearth RPC server (protocol {'.'.join(map(str, PROTOCOL))}) listening on {endpoint}; "
          f"serving {', '.join(served)}; Ctrl-C stops it.", flush=True)
    if is_loopback(address):
        print("Only this machine can connect. From another machine, tunnel over SSH:\n"
              + tunnel_hint(args.port), flush=True)
    try:
        while not failed.wait(3600):
            pass
    except KeyboardInterrupt:
        print("hearth rpc-server: stopped", file=sys.stderr)
        sys.stdout.flush()
        return 0
    raise HearthError(f"the RPC server could not listen on {endpoint} (see the messages above)")
