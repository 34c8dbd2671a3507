"""Benchmark the chat store at scale: 1,000 chats and 100,000 messages, then list, open, search.

Run: ``.venv/bin/python bench/chat_store_bench.py [--chats 1000] [--messages 100000]``.
Prints one line per figure; the numbers go in bench/RESULTS.md under "Chats".
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.chats.reply import ReplyWriter
from app.chats.store import ChatStore

WORDS = [
    "the", "model", "token", "prompt", "cache", "python", "rust", "sqlite", "window", "layer",
    "quant", "memory", "thread", "answer", "question", "fast", "slow", "offload", "context",
    "system", "reply", "stream", "markdown", "code", "block", "function", "value",
]


def paragraph(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def fill(store: ChatStore, chats: int, messages: int, rng: random.Random) -> None:
    per_chat = messages // chats
    now = time.time() - chats * 60
    for n in range(chats):
        rows = [
            {
                "role": "user" if i % 2 == 0 else "assistant",
                "content": paragraph(rng, 12 if i % 2 == 0 else 60),
                "created": now + n * 60 + i,
                "tokens": None if i % 2 == 0 else 80,
                "tokens_per_s": None if i % 2 == 0 else 25.0,
            }
            for i in range(per_chat)
        ]
        store.insert_chat(f"Chat {n}: {paragraph(rng, 4)}", rows, created=now + n * 60)


def timed(action: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time in milliseconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chats.sqlite3"
        start = time.perf_counter()
        with ChatStore(path) as store:
            fill(store, args.chats, args.messages, rng)
        fill_s = time.perf_counter() - start
        size_mb = path.stat().st_size / 1e6
        print(f"fill: {args.chats} chats, {args.messages} messages in {fill_s:.1f} s "
              f"({size_mb:.0f} MB on disk)")

        # A cold start: open the file, list every chat, open the newest chat.
        def cold_open() -> None:
            with ChatStore(path) as store:
                newest = store.list_chats()[0]
                store.messages(newest.id)

        print(f"open store + list {args.chats} chats + open newest chat: {timed(cold_open):.1f} ms")
        with ChatStore(path) as store:
            chats = store.list_chats()
            print(f"list chats (newest first): {timed(store.list_chats):.2f} ms")
            some = chats[len(chats) // 2].id
            print(f"open one chat ({store.message_count(some)} messages): "
                  f"{timed(lambda: store.messages(some)):.2f} ms")
            big = store.insert_chat(
                "big", [{"role": "user" if i % 2 == 0 else "assistant",
                         "content": paragraph(rng, 40)} for i in range(2000)])
            print(f"open a 2,000-message chat: {timed(lambda: store.messages(big.id)):.1f} ms")
            print(f"search one word (FTS5={store.has_fts}): "
                  f"{timed(lambda: store.search('offload')):.1f} ms")
            print(f"search two-word prefix: {timed(lambda: store.search('mark thre')):.1f} ms")
            store.has_fts = False
            print(f"search one word, LIKE fallback: {timed(lambda: store.search('offload'), 3):.1f} ms")
            store.has_fts = True
            print(f"add a user message: {timed(lambda: store.add_message(some, 'user', 'hi')):.2f} ms")
            reply = store.add_message(some, "assistant", "", status="streaming")
            writer = ReplyWriter(store, reply.id, interval=0.0)
            text = paragraph(rng, 400)

            def one_flush() -> None:
                writer.append(" " + text[:20])

            print(f"one streaming-reply write (~2 kB reply): {timed(one_flush, 20):.2f} ms")
            writer.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
