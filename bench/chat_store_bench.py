"""Benchmark the chat store at scale: 1,000 chats and 100,000 messages, then list, open, search.

Run: ``.venv/bin/python bench/chat_store_bench.py [--chats 1000] [--messages 100000]``;
with ``--gui``, the Chat page's cost to stream a reply and to scroll a 2,000-message chat.
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


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def gui_bench(messages: int, tokens: int) -> None:
    """Streaming render cost and scrolling in the real Chat page (offscreen Qt)."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("HEARTH_THEME", "light")
    with tempfile.TemporaryDirectory() as home:
        os.environ["HEARTH_HOME"] = home
        from PySide6.QtCore import Qt
        from PySide6.QtWidgets import QApplication

        from app.ui.application import create_context
        from app.ui.chat.page import ChatPage

        app = QApplication.instance() or QApplication([])
        context = create_context(app)  # type: ignore[arg-type]
        rng = random.Random(7)
        with ChatStore(context.dirs.chats_db) as store:
            rows = []
            for i in range(messages):
                text = paragraph(rng, 12 if i % 2 == 0 else 60)
                if i % 10 == 1:
                    text += "\n\n```python\ndef f(x):\n    return x * 2\n```\n\n- one\n- two"
                rows.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
            chat = store.insert_chat("bench", rows)
        start = time.perf_counter()
        page = ChatPage(context)
        page.resize(1100, 760)
        page.show()
        app.processEvents()
        print(f"open the Chat page on a {messages}-message chat: "
              f"{(time.perf_counter() - start) * 1000:.0f} ms")

        # Stream a reply: one frame = the page's coalescing step plus a full repaint.
        reply = page.store.add_message(chat.id, "assistant", "", status="streaming")
        page.writer = ReplyWriter(page.store, reply.id)
        page.messages.append(reply)
        page.messages.live_id = reply.id
        pieces = ["word " for _ in range(tokens)]
        pieces[tokens // 3] = "\n\n```python\n"
        pieces[2 * tokens // 3] = "\n```\n\n"
        frames: list[float] = []
        shown = 0
        for index in range(0, tokens, 3):  # 3 tokens per 16 ms frame: ~190 tok/s
            page._pending += "".join(pieces[index:index + 3])
            began = time.perf_counter()
            before = page.messages.index(page.messages.rowCount() - 1).data(Qt.ItemDataRole.DisplayRole)
            page._show_pending()
            app.processEvents()  # the layout and the one repaint a frame costs
            work = (time.perf_counter() - began) * 1000
            after = page.messages.index(page.messages.rowCount() - 1).data(Qt.ItemDataRole.DisplayRole)
            shown += before != after
            frames.append(work)
            time.sleep(max(0.0, 0.016 - work / 1000))
        page.writer.finish()
        print(f"streaming a {tokens}-token reply (with a code block) at the end of it, "
              f"{len(frames)} frames of 16 ms: GUI work per frame median "
              f"{statistics.median(frames):.1f} ms, p95 {percentile(frames, 0.95):.1f} ms, "
              f"max {max(frames):.1f} ms; the text on screen changed in {shown} frames")

        # Scroll from the bottom to the top in 120 px steps, loading older pages on the way.
        bar = page.view.verticalScrollBar()
        steps: list[float] = []
        while (bar.value() > 0 or page.messages.has_earlier()) and len(steps) < 20000:
            began = time.perf_counter()
            bar.setValue(max(0, bar.value() - 120))
            app.processEvents()
            steps.append((time.perf_counter() - began) * 1000)
        print(f"scrolling all {messages} messages: {len(steps)} steps, median "
              f"{statistics.median(steps):.1f} ms, p95 {percentile(steps, 0.95):.1f} ms, "
              f"max {max(steps):.1f} ms")
        page.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--gui", action="store_true",
                        help="instead: the Chat page's streaming and scrolling cost")
    args = parser.parse_args()
    if args.gui:
        gui_bench(2000, 600)
        return 0
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
