"""``hearth prompt``: print the exact prompt string a model would be sent, to check a template by eye."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.catalog import load_catalog
from app.cli.terminal import safe_line, safe_text
from app.engine.chat_format import ChatFormat, resolve_chat_format
from app.errors import HearthError
from app.templates.prompt import Message


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
    parser.add_argument("--system", help="system message (default: none; with --chat, the chat's)")
    parser.add_argument("--user", action=_Turn, const="user", dest="turns", metavar="TEXT",
                        help="a user message")
    parser.add_argument("--assistant", action=_Turn, const="assistant", dest="turns",
                        metavar="TEXT", help="an assistant reply")
    parser.add_argument("--template", metavar="ID",
                        help="use this catalogue prompt format instead (chatml, llama-2-chat, ...)")
    parser.add_argument("--chat", type=int, metavar="ID",
                        help="render stored chat ID (see `hearth chats list`) as the window and `hearth chat` "
                        "send it for the next reply: its system message, or the model's default, and its "
                        "history; a --user message is the one about to be sent")
    parser.add_argument("--no-generation-prompt", action="store_true",
                        help="do not open an assistant turn at the end")
    parser.add_argument("--show-format", action="store_true",
                        help="also print which template was used and where it came from "
                        "(catalogue, model file, fallback), on stderr")
    add_remedy_arguments(parser)
    parser.set_defaults(func=run, turns=None)


def add_remedy_arguments(parser: argparse.ArgumentParser) -> None:
    """--fold-system and --merge-turns: reshape a conversation that a model's template refuses."""
    parser.add_argument("--fold-system", dest="remedies", action="append_const", const="fold_system",
                        help="fold the system message into the first user message (for templates "
                        "that refuse a system role, such as Gemma's)")
    parser.add_argument("--merge-turns", dest="remedies", action="append_const", const="merge_turns",
                        help="join consecutive messages of the same role (for templates that demand "
                        "strict user/assistant alternation, such as Mistral's)")


def chosen_remedy(args: argparse.Namespace) -> str | None:
    """The remedy the command line asked for ("fold_system", "merge_turns", both joined by "+")."""
    remedies = getattr(args, "remedies", None) or []
    return "+".join(dict.fromkeys(remedies)) or None


def run(args: argparse.Namespace) -> int:
    chat = resolve_chat_format(args.model, load_catalog(), template_override=args.template)
    # Rendered first: a template that refuses the conversation prints its one error line and nothing else.
    if args.chat is not None:
        prompt = _stored_chat_prompt(args, chat)
    else:
        messages = [Message("system", args.system)] if args.system is not None else []
        messages += [Message(role, text) for role, text in (args.turns or [])]
        prompt = chat.render(messages, add_generation_prompt=not args.no_generation_prompt,
                             remedy=chosen_remedy(args))
    if args.show_format:
        print(safe_line(f"template: {chat.label}"), file=sys.stderr)
        print(safe_line(f"source: {chat.source} ({chat.origin_label})"), file=sys.stderr)
        print(safe_line(f"stop: {list(chat.stop)}; bos: {chat.bos_token!r}; eos: {chat.eos_token!r}"), file=sys.stderr)
        if chosen_remedy(args):
            print(safe_line(f"remedy: {chosen_remedy(args)}"), file=sys.stderr)
    sys.stdout.write(safe_text(prompt, join_crlf=False))  # exact: a \r is shown, not dropped
    sys.stdout.flush()
    return 0


def _stored_chat_prompt(args: argparse.Namespace, chat_format: ChatFormat) -> str:
    """The prompt the window and ``hearth chat`` build for chat ``args.chat``'s next reply (the same
    :class:`Conversation` rules: system message precedence, history, the chat's saved remedy)."""
    from app.chats.store import ChatStore
    from app.conversation import Conversation

    turns = args.turns or []
    if any(role == "assistant" for role, _ in turns) or len(turns) > 1:
        raise HearthError("with --chat, give at most one --user message (the one about to be sent); "
                          "the rest of the conversation is the chat's")
    if args.no_generation_prompt:
        raise HearthError("--no-generation-prompt does not apply to --chat: a chat's prompt always opens the reply")
    with ChatStore.open_default() as store:  # read once, copied to memory: nothing is written
        conversation = Conversation.detached(store, args.chat)
    if args.system is not None:
        conversation.system_override = args.system
    conversation.remedy_override = chosen_remedy(args)
    return conversation.build_prompt(chat_format, pending_user=turns[0][1] if turns else None)
