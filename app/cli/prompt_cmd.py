"""``hearth prompt``: print the exact prompt string a model would be sent, to check a template by eye."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.catalog import load_catalog
from app.cli.terminal import safe_line, safe_text
from app.engine.chat_format import resolve_chat_format
from app.engine.templates import Message


class _Turn(argparse.Action):
    """Collect --user/--assistant in command-line order."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        turns = list(getattr(namespace, "turns", None) or [])
        turns.append((self.const, values))
        namespace.turns = turns


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "prompt",
        help="print the exact prompt string sent to a model",
        description="Render a conversation with MODEL's prompt template and print the exact "
        "string llama.cpp would evaluate. --user and --assistant may repeat; their order on "
        "the command line is the conversation's order.",
    )
    parser.add_argument("model", metavar="MODEL", help="a catalogue model id or a .gguf file")
    parser.add_argument("--system", help="system message (default: none)")
    parser.add_argument("--user", action=_Turn, const="user", dest="turns", metavar="TEXT",
                        help="a user message")
    parser.add_argument("--assistant", action=_Turn, const="assistant", dest="turns",
                        metavar="TEXT", help="an assistant reply")
    parser.add_argument("--template", metavar="ID",
                        help="use this catalogue prompt format instead (chatml, llama-2-chat, ...)")
    parser.add_argument("--no-generation-prompt", action="store_true",
                        help="do not open an assistant turn at the end")
    parser.add_argument("--show-format", action="store_true",
                        help="also print which template was used, on stderr")
    parser.set_defaults(func=run, turns=None)


def run(args: argparse.Namespace) -> int:
    chat = resolve_chat_format(args.model, load_catalog(), template_override=args.template)
    messages = [Message("system", args.system)] if args.system is not None else []
    messages += [Message(role, text) for role, text in (args.turns or [])]
    prompt = chat.render(messages, add_generation_prompt=not args.no_generation_prompt)
    if args.show_format:
        print(safe_line(f"template: {chat.label}; stop: {list(chat.stop)}"), file=sys.stderr)
    sys.stdout.write(safe_text(prompt, join_crlf=False))  # exact: a \r is shown, not dropped
    sys.stdout.flush()
    return 0
