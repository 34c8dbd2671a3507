"""``hearth search``: find models on the Hugging Face Hub, with format, downloads and likes."""

from __future__ import annotations

import argparse
import json
from typing import Any

from app.cli.table import render_table


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "search",
        help="search the Hugging Face Hub for models",
        description="Search the Hub's models (most downloaded first). GGUF repos run in Hearth; GPTQ repos "
        "convert. Add one with `hearth catalog add REPO`.",
    )
    parser.add_argument("query", nargs="+", metavar="QUERY", help="words to look for, e.g. mistral 7b")
    parser.add_argument("--format", choices=("gguf", "gptq"), help="only repos of this format")
    parser.add_argument("--limit", type=int, default=20, help="how many results (default 20)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(func=run)


def _count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 1_000:
        return f"{n / 1e3:.1f}k"
    return str(n)


def run(args: argparse.Namespace) -> int:
    from app.hub.search import search_models

    query = " ".join(args.query)
    results = search_models(query, args.format, max(1, min(args.limit, 100)))
    if args.json:
        print(json.dumps({"query": query, "format": args.format, "results": [r.to_json() for r in results]},
                         indent=2, ensure_ascii=False))
        return 0
    if not results:
        kind = f" {args.format.upper()}" if args.format else ""
        print(f"No{kind} models on the Hub match {query!r}.")
        return 0
    rows = [[r.repo, r.format.upper(), _count(r.downloads), _count(r.likes),
             r.last_modified.date().isoformat() if r.last_modified else "-",
             "gated" if r.gated else ""] for r in results]
    print(render_table(["REPO", "FORMAT", "DOWNLOADS", "LIKES", "UPDATED", ""], rows, right={2, 3}))
    print(f"\n{len(results)} models · add one with `hearth catalog add REPO`")
    return 0
