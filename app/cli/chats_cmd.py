"""``hearth chats``: list, export and import the conversations shared with the GUI."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from app.chats.store import ChatStore
from app.chats.transfer import chat_to_json, chat_to_markdown, import_file
from app.cli.table import render_table
from app.errors import HearthError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "chats",
        help="list, export and import saved chats",
        description="The chat history that the window and `hearth chat` share.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", help="list chats, newest first")
    listing.add_argument("--json", action="store_true", help="print a JSON list of chats")
    listing.add_argument("--search", metavar="TEXT", help="only chats whose title or messages match")
    export = actions.add_parser("export", help="print one chat as Markdown or JSON")
    export.add_argument("id", type=int, metavar="ID", help="chat id (see `hearth chats list`)")
    export.add_argument("--format", choices=("md", "json"), default="md", help="default: md")
    export.add_argument("--output", "-o", type=Path, metavar="FILE", help="write to FILE")
    importing = actions.add_parser("import", help="import chats from a JSON export")
    importing.add_argument("file", type=Path, metavar="FILE",
                           help="a JSON file written by `hearth chats export --format json`")
    parser.set_defaults(func=run, chats_parser=parser)


def run(args: argparse.Namespace) -> int:
    if args.action is None:
        args.chats_parser.print_help()
        return 2
    with ChatStore.open_default() as store:
        if args.action == "list":
            return _list(store, args)
        if args.action == "export":
            return _export(store, args)
        return _import(store, args)


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M")


def _list(store: ChatStore, args: argparse.Namespace) -> int:
    chats = store.search(args.search) if args.search else store.list_chats()
    if args.json:
        rows = [
            {
                "id": c.id, "title": c.display_title, "created": c.created, "updated": c.updated,
                "model": c.model, "messages": store.message_count(c.id),
            }
            for c in chats
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not chats:
        print("No chats yet. Start one with `hearth chat` or in the window.")
        return 0
    table = [
        [str(c.id), c.display_title, c.model or "", str(store.message_count(c.id)), _when(c.updated)]
        for c in chats
    ]
    print(render_table(["ID", "Title", "Model", "Messages", "Updated"], table))
    return 0


def _export(store: ChatStore, args: argparse.Namespace) -> int:
    chat = store.chat(args.id)
    messages = store.messages(chat.id)
    if args.format == "json":
        text = json.dumps(chat_to_json(chat, messages), ensure_ascii=False, indent=2) + "\n"
    else:
        text = chat_to_markdown(chat, messages)
    if args.output:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise HearthError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"Exported chat {chat.id} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _import(store: ChatStore, args: argparse.Namespace) -> int:
    for chat in import_file(store, args.file):
        print(f"Imported chat {chat.id}: {chat.display_title} ({store.message_count(chat.id)} messages)")
    return 0
