"""``hearth login`` / ``hearth login --status`` / ``hearth login --sign-out``: the Hugging Face token, without `hf`."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from app.cli.terminal import safe_line
from app.errors import HearthError
from app.hub import account


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "login",
        help="sign in to Hugging Face (for gated and private models)",
        description="Check an access token with the Hub (whoami) and store it where `hf auth login` does, so "
        "Hearth, the hf command and other tools all use it. The token is read from the prompt (hidden), or "
        "from standard input when it is not a terminal. HF_TOKEN in the environment wins over a stored token.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--status", action="store_true", help="say who is signed in; change nothing")
    action.add_argument("--sign-out", action="store_true", help="forget the stored token")
    parser.set_defaults(func=run)


def _read_token() -> str:
    if sys.stdin.isatty():
        print(f"Create a token at {account.tokens_page()} (a read token is enough).", file=sys.stderr)
        return getpass.getpass("Paste your Hugging Face token (hidden): ")
    return sys.stdin.readline()


def run(args: argparse.Namespace) -> int:
    if args.sign_out:
        account.sign_out()
        print("Signed out of Hugging Face" + (" (HF_TOKEN is still set in this environment)"
                                              if account.token_from_environment() else ""))
        return 0
    if args.status:
        signed = account.signed_in()
        print(safe_line(signed.label) if signed else "Not signed in to Hugging Face (run `hearth login`)")
        return 0
    token = _read_token().strip()
    if not token:
        raise HearthError(f"no token given: create one at {account.tokens_page()} and paste it")
    signed = account.sign_in(token)
    print(safe_line(signed.label))  # the account name comes from the Hub
    return 0
