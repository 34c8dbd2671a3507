"""A process killed with SIGKILL mid-reply: the store keeps the question and all but the last second."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.chats.store import ChatStore

QUESTION = "Explain WAL mode — in detail, please ✍️\n```sql\nPRAGMA journal_mode = WAL;\n```"

# The child records like `hearth chat` does: the question first, then a reply that grows by one
# token every 20 ms; each token carries the wall-clock time it was produced.
CHILD = r"""
import sys, time
from pathlib import Path
from app.chats.store import ChatStore
from app.conversation.conversation import Conversation

store = ChatStore(Path(sys.argv[1]))
stall_after = float(sys.argv[2])
conversation = Conversation(store)
conversation.add_user(sys.argv[3], model_name="test")
reply = conversation.start_reply("test", background=True)
print("streaming", conversation.chat.id, flush=True)
start = time.time()
n = 0
stalled = False
while True:
    now = time.time()
    if now - start < stall_after:
        reply.append(f"t{n}@{now:.3f} ")
        n += 1
    elif not stalled:
        stalled = True
        print("stalled", n, flush=True)
    time.sleep(0.02)
"""


def _run_and_kill(db: Path, stall_after: float, kill_after: float) -> tuple[int, float, int | None]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(stall_after), QUESTION],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        assert line[:1] == ["streaming"], f"child did not start: {line}"
        time.sleep(kill_after)
        killed_at = time.time()
        stalled = None
        if stall_after < kill_after:
            # The child says how many tokens it produced before the stall (so a loaded machine cannot fool the test).
            report = child.stdout.readline().split()
            assert report[:1] == ["stalled"], f"child did not stall: {report}"
            stalled = int(report[1])
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    return int(line[1]), killed_at, stalled


def _tokens(content: str) -> list[tuple[int, float]]:
    pairs = []
    for piece in content.split():
        number, stamp = piece[1:].split("@")
        pairs.append((int(number), float(stamp)))
    return pairs


@pytest.mark.slow
def test_kill_mid_stream_loses_at_most_the_last_second(tmp_path: Path) -> None:
    db = tmp_path / "chats.sqlite3"
    chat_id, killed_at, _ = _run_and_kill(db, stall_after=1e9, kill_after=2.5)
    with ChatStore(db) as store:
        user, reply = store.messages(chat_id)
    assert (user.role, user.content, user.status) == ("user", QUESTION, "complete")
    # The writer is gone: opening the store marks the reply interrupted, its text kept.
    assert reply.role == "assistant" and reply.status == "interrupted"
    tokens = _tokens(reply.content)
    assert [n for n, _ in tokens] == list(range(len(tokens))), "the reply is a clean prefix"
    assert len(tokens) > 20
    assert tokens[-1][1] >= killed_at - 1.0, (
        f"the last saved token is {killed_at - tokens[-1][1]:.2f} s older than the kill"
    )


@pytest.mark.slow
def test_kill_while_the_model_stalls_loses_nothing(tmp_path: Path) -> None:
    # Tokens stop 1 s in (a slow prompt, a stalled model); the kill comes 1.5 s later.
    db = tmp_path / "chats.sqlite3"
    chat_id, _, produced = _run_and_kill(db, stall_after=1.0, kill_after=2.5)
    with ChatStore(db) as store:
        _, reply = store.messages(chat_id)
    tokens = _tokens(reply.content)
    first = tokens[0][1]
    # Everything produced in the first second is there (about 50 tokens at 20 ms each on a quiet machine).
    assert tokens[-1][1] >= first + 0.9
    assert produced is not None and produced > 10
    assert [n for n, _ in tokens] == list(range(produced)), "every token produced before the stall was kept"
