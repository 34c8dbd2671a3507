"""``hearth chats``: list, export, import and delete the conversations shared with the GUI."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.chats.rows import format_time
from app.chats.store import ChatStore
from app.chats.transfer import chat_to_json, chat_to_markdown, import_file
from app.cli.table import render_table
from app.cli.terminal import safe_json, safe_line, safe_text
from app.errors import HearthError

STATE_LABELS = {"interrupted": "interrupted reply", "streaming": "replying"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "chats",
        help="list, export, import and delete saved chats",
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
    deleting = actions.add_parser("delete", help="delete chats and their messages")
    deleting.add_argument("ids", type=int, nargs="+", metavar="ID",
                          help="chat id (see `hearth chats list`)")
    deleting.add_argument("-y", "--yes", action="store_true",
                          help="do not ask first (it only asks when run in a terminal)")
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
        if args.action == "delete":
            return _delete(store, args)
        return _import(store, args)


def _when(stamp: float) -> str:
    return format_time(stamp)


def _list(store: ChatStore, args: argparse.Namespace) -> int:
    chats = store.search(args.search) if args.search else store.list_chats()
    states = store.reply_states()
    if args.json:
        rows = [
            {
                "id": c.id, "title": c.display_title, "created": c.created, "updated": c.updated,
                "model": c.model, "messages": store.message_count(c.id), "state": states.get(c.id),
            }
            for c in chats
        ]
        print(safe_json(json.dumps(rows, ensure_ascii=False, indent=2)))
        return 0
    if not chats:
        print("No chats yet. Start one with `hearth chat` or in the window.")
        return 0
    table = [
        [str(c.id), c.display_title, c.model or "", str(store.message_count(c.id)), _when(c.updated),
         STATE_LABELS.get(states.get(c.id, ""), "")]
        for c in chats
    ]
    print(render_table(["ID", "Title", "Model", "Messages", "Updated", "State"], table))
    interrupted = [c.id for c in chats if states.get(c.id) == "interrupted"]
    if interrupted:
        ids = ", ".join(str(i) for i in interrupted)
        print(f"\nAn interrupted reply keeps the text saved before it stopped (chat {ids}): open it in "
              "the window to continue or regenerate it, or go on with `hearth chat MODEL --chat ID`.")
    return 0


def _export(store: ChatStore, args: argparse.Namespace) -> int:
    chat = store.chat(args.id)
    messages = store.messages(chat.id)
    if args.format == "json":
        text = json.dumps(chat_to_json(chat, messages), ensure_ascii=False, indent=2) + "\n"
    else:
        text = chat_to_markdown(chat, messages)
    if not args.output:
        # The JSON stays the same value; Markdown shows control characters escaped.
        text = safe_json(text) if args.format == "json" else safe_text(text)
    if args.output:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise HearthError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(safe_line(f"Exported chat {chat.id} to {args.output}"), file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _import(store: ChatStore, args: argparse.Namespace) -> int:
    for chat in import_file(store, args.file):
        count = store.message_count(chat.id)
        print(safe_line(f"Imported chat {chat.id}: {chat.display_title} ({count} messages)"))
    return 0


def _delete(store: ChatStore, args: argparse.Namespace) -> int:
    """Delete each chat named; unknown ids are checked first, so a typo deletes nothing."""
    ids = list(dict.fromkeys(args.ids))
    chats = [store.chat(chat_id) for chat_id in ids]
    if not args.yes and sys.stdin.isatty():
        names = ", ".join(f"{c.id} “{c.display_title}”" for c in chats)
        try:
            answer = input(safe_line(f"Delete chat {names} and all its messages? [y/N] "))
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing deleted.", file=sys.stderr)
            return 1
    for chat in chats:
        deleted = store.delete_chat(chat.id)
        count = len(deleted.message_rows)
        print(safe_line(f"Deleted chat {chat.id}: {chat.display_title} ({count} messages)"))
    return 0
