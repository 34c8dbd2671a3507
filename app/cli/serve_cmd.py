"""``hearth serve``: an OpenAI-compatible API for other programs (editors, Open WebUI, scripts)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from app.cli.terminal import safe_line
from app.engine.rpc import parse_endpoints
from app.errors import HearthError


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("a port is between 0 and 65535")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve installed models through an OpenAI-compatible API",
        description="Serve Hearth's models at http://HOST:PORT/v1 (GET /v1/models, POST "
        "/v1/chat/completions, POST /v1/completions), for any program that speaks OpenAI's API. "
        "MODEL is loaded at start; other installed models load when a request names them "
        "(one at a time). Requests take turns on the engine.",
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=_port, default=8080, help="port (default 8080)")
    parser.add_argument("--model", metavar="MODEL", help="a catalogue model id or .gguf file to load at start")
    parser.add_argument("--api-key", metavar="KEY",
                        help="require 'Authorization: Bearer KEY' on every request")
    parser.add_argument("--cors", metavar="ORIGIN", action="append", default=[],
                        help="let web pages from ORIGIN call the API (repeatable; '*' for any); off by default")
    parser.add_argument("--ctx", type=int, help="context length (default: the model's, capped by memory)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    parser.add_argument("--gpu-layers", type=int, metavar="N", help="layers to offload to the GPU (default auto)")
    parser.add_argument("--rpc", metavar="HOST:PORT[,HOST:PORT...]",
                        help="spread each model's layers over these machines running `hearth rpc-server`")
    parser.add_argument("--queue", type=int, default=16,
                        help="requests that may wait for the engine before the server answers 429 (default 16)")
    parser.add_argument("--quiet", action="store_true", help="do not print a line per request")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.server.engine_bridge import EngineBridge
    from app.server.runner import BackgroundServer, ServerSettings, exposure_warning

    warning = exposure_warning(args.host, args.api_key)
    if warning:
        print(f"hearth: warning: {warning}", file=sys.stderr)
    if args.ctx is not None and args.ctx < 16:
        raise HearthError("--ctx must be at least 16 tokens")
    options: dict[str, Any] = {key: value for key, value in (
        ("ctx", args.ctx), ("n_threads", args.threads), ("gpu_layers", args.gpu_layers)) if value is not None}
    if args.rpc:
        options["rpc"] = tuple(str(endpoint) for endpoint in parse_endpoints(args.rpc))

    def log_line(record: Any) -> None:
        if not args.quiet:
            print(safe_line(record.line()), file=sys.stderr, flush=True)

    bridge = EngineBridge(load_options=options, max_queue=max(1, args.queue))
    settings = ServerSettings(args.host, args.port, args.api_key, tuple(args.cors), log_line)
    try:
        if args.model:
            print(f"Loading {args.model}...", file=sys.stderr, flush=True)
            served = bridge.preload(args.model)
            print(safe_line(f"Loaded {served.id} ({served.path})"), file=sys.stderr)
        server = BackgroundServer(bridge, settings).start()
        names = ", ".join(m.id for m in bridge.models()) or "none installed yet"
        print(f"Hearth API at {server.url} (models: {names}). Ctrl-C stops.", file=sys.stderr, flush=True)
        stopping = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        try:
            while server.thread.is_alive() and not stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        print("Stopping.", file=sys.stderr)
        server.stop(close_engine=False)
    finally:
        bridge.close()
    return 0
