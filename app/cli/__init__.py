"""Command-line front end: one module per subcommand, over the same services as the GUI."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Callable, Sequence

from app import __version__
from app.cli.terminal import safe_line
from app.errors import HearthError


def command_modules() -> list[str]:
    """Every ``app/cli/*_cmd.py``: each defines ``register(subparsers)`` and sets ``func``."""
    package = importlib.import_module("app.cli")
    return sorted(
        f"app.cli.{info.name}"
        for info in pkgutil.iter_modules(package.__path__)
        if info.name.endswith("_cmd")
    )

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    import shtab

    from app.cli.environment import epilog

    parser = argparse.ArgumentParser(
        prog="hearth",
        description="Chat with large language models on your own machine. "
        "With no command, Hearth opens its window.",
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    shtab.add_argument_to(parser, ["--print-completion"], help="print a bash or zsh completion script and exit")
    parser.add_argument("--version", action="store_true", help="print the version and the llama.cpp backend")
    parser.add_argument("--self-test", action="store_true",
                        help="start offscreen, load a model, generate a few tokens, store a chat, and report")
    parser.add_argument("--model", metavar="PATH", help="with --self-test: the .gguf to load (default: the starter)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_modules():
        importlib.import_module(name).register(subparsers)
    return parser


def _self_test(args: argparse.Namespace) -> int:
    from app.selftest import run_self_test

    print(safe_line(run_self_test(args.model).line()))
    return 0


def main(argv: Sequence[str]) -> int:
    if not argv:
        # The GUI: skip importing every subcommand (and their dependencies) to open fast.
        from app.ui.application import run_gui

        return run_gui([])
    if len(argv) == 1 and argv[0].lower().endswith(".gguf") and not argv[0].startswith("-"):
        # `hearth model.gguf`: what the desktop's file association runs.
        from app.ui.application import run_gui

        return run_gui([], open_model=argv[0])
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except BrokenPipeError:  # `hearth --help | head`
        return 0
    handler: Handler | None = getattr(args, "func", None)
    if args.version:
        from app.engine.rpc_native import rpc_status
        from app.selftest import backend_name

        print(f"Hearth {__version__} · llama.cpp backend: {backend_name()} · {rpc_status()}")
        return 0
    if args.self_test:
        handler = _self_test
    if handler is None:
        from app.ui.application import run_gui

        return run_gui(list(argv))
    try:
        return handler(args)
    except HearthError as exc:
        print(f"hearth: error: {safe_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hearth: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        # A bug, not bad input: still one line (outside text in it made safe), and a way to see more.
        if os.environ.get("HEARTH_DEBUG"):
            raise
        print(f"hearth: internal error: {type(exc).__name__}: {safe_line(exc, limit=500)} "
              "(a bug in Hearth: run again with HEARTH_DEBUG=1 for the traceback, and please report it)",
              file=sys.stderr)
        return 70
