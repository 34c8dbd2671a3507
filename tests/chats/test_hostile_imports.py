"""Generated hostile imports (types, ranges, Unicode, depth, size): one clear line or a clean import."""

from __future__ import annotations

import copy
import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from app.chats.import_check import MAX_IMPORT_BYTES, ChatImportError
from app.chats.store import ChatStore
from app.chats.transfer import chat_to_json, chat_to_markdown, import_file
from app.cli import main
from app.paths import install_root

VALID: dict[str, Any] = {
    "format": "hearth-chat", "version": 1, "title": "A fine chat", "created": 1_700_000_000.0,
    "model": "SmolLM2", "system_message": "Be brief.", "settings": {"sampling": {"temperature": 0.7}},
    "messages": [
        {"role": "user", "content": "Hello ✨", "created": 1_700_000_001.0},
        {"role": "assistant", "content": "Hi!", "created": 1_700_000_002.5, "status": "complete",
         "tokens": 3, "tokens_per_s": 41.5, "model": "SmolLM2"},
    ],
}

# Raw JSON fragments (NaN and friends are not JSON, but Python's json reads them by default).
HOSTILE_VALUES: list[str] = [
    "1e300", "-1e300", "Infinity", "-Infinity", "NaN", "-1e18", "1e18", "-1", "0", "true", "false",
    "null", "[]", "{}", '"text"', '""', '"\\ud800"', '"\\udfff lone"', '"\\u0000nul"',
    '"\\u001b]0;pwn\\u0007\\u001b[2J"', '"\\u202egpj.exe"', '"a\\u2028b"', "9" * 400, "1" * 5000,
    "-0.0", "1.5", "[[[[[[]]]]]]", '{"a": {"b": {"c": [1, 2, {"d": null}]}}}', '"' + "x" * 5000 + '"',
    "12345678901234567890123", "4.9e-324", "[1, 2, 3]", '{"role": "user"}',
]
CHAT_KEYS = ["format", "version", "title", "created", "model", "system_message", "settings",
             "messages"]
MESSAGE_KEYS = ["role", "content", "created", "status", "tokens", "tokens_per_s", "model"]
MARK = "\u2063HOSTILE\u2063"


def _with_marker(path: list[Any]) -> str:
    """VALID as JSON text with a marker string at ``path`` (replaced by a raw fragment later)."""
    data = copy.deepcopy(VALID)
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = MARK
    return json.dumps(data)


def generated_imports(count: int, seed: int = 19) -> list[tuple[str, str]]:
    """(label, file text): one field of a valid export replaced by a hostile value, or the
    structure itself bent (deep nesting, many messages, wrong top level, junk bytes)."""
    rng = random.Random(seed)
    cases: list[tuple[str, str]] = []
    while len(cases) < count:
        kind = rng.random()
        if kind < 0.45:
            key = rng.choice(CHAT_KEYS)
            value = rng.choice(HOSTILE_VALUES)
            cases.append((f"chat.{key}={value[:20]}", _with_marker([key]).replace(json.dumps(MARK), value)))
        elif kind < 0.85:
            index, key = rng.randrange(2), rng.choice(MESSAGE_KEYS)
            value = rng.choice(HOSTILE_VALUES)
            text = _with_marker(["messages", index, key]).replace(json.dumps(MARK), value)
            cases.append((f"message[{index}].{key}={value[:20]}", text))
        elif kind < 0.90:
            depth = rng.choice([20, 200, 5000, 100_000])
            nested = "[" * depth + "]" * depth
            where = rng.choice(["settings", "top", "content"])
            if where == "top":
                text = nested
            else:
                key = "settings" if where == "settings" else "system_message"
                inner = ('{"a":' * depth + "1" + "}" * depth) if where == "settings" else nested
                text = _with_marker([key]).replace(json.dumps(MARK), inner)
            cases.append((f"depth {depth} in {where}", text))
        elif kind < 0.94:
            n = rng.choice([0, 1, 100_001])
            messages = [{"role": "user", "content": "x"}] * n
            cases.append((f"{n} messages", json.dumps({"title": "many", "messages": messages})))
        elif kind < 0.97:
            top = rng.choice(["[]", "7", '"chat"', "null", "[7]", '[{"messages": []}, []]', "{}"])
            cases.append((f"top level {top}", top))
        else:
            junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
            cases.append(("junk bytes", junk.decode("latin-1")))
    return cases


def tally(name: str, tried: int, handled: int) -> None:
    print(f"\n[tally] {name}: {handled}/{tried} handled", file=sys.stderr)


def _check_stored_chat(store: ChatStore, chat_id: int) -> None:
    chat = store.chat(chat_id)
    messages = store.messages(chat_id)
    assert math.isfinite(chat.created) and 0 <= chat.created <= 253402300799
    for message in messages:
        assert math.isfinite(message.created) and message.created >= 0
        assert message.tokens is None or message.tokens >= 0
        message.content.encode("utf-8")
    json.dumps(chat_to_json(chat, messages), allow_nan=False)
    chat_to_markdown(chat, messages).encode("utf-8")


@pytest.mark.slow
def test_generated_hostile_imports_refuse_in_one_line_or_import_cleanly(tmp_path: Path) -> None:
    cases = generated_imports(600)
    store = ChatStore(tmp_path / "chats.sqlite3")
    handled = refused = 0
    slowest = 0.0
    for n, (label, text) in enumerate(cases):
        path = tmp_path / f"case{n}.json"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        before = store.chat_count()
        started = time.monotonic()
        try:
            chats = import_file(store, path)
        except ChatImportError as exc:
            message = str(exc)
            assert "\n" not in message and len(message) < 1000, (label, message[:300])
            assert store.chat_count() == before, f"{label}: a refused file stored something"
            refused += 1
        else:
            for chat in chats:
                _check_stored_chat(store, chat.id)
        slowest = max(slowest, time.monotonic() - started)
        handled += 1
        path.unlink()
    # Whatever went in, listing and exporting everything still works.
    for chat in store.list_chats():
        _check_stored_chat(store, chat.id)
    store.close()
    tally(f"hostile imports ({refused} refused, {handled - refused} imported; slowest {slowest:.2f} s)",
          len(cases), handled)
    assert handled == len(cases) and refused > len(cases) // 2
    assert slowest < 5.0


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("created", "1e300", '"created" is 1e+300, not a time Hearth can show'),
        ("created", "-1e18", '"created" is -1e+18, not a time Hearth can show'),
        ("created", "Infinity", "Infinity is not a number Hearth accepts"),
        ("created", "NaN", "NaN is not a number Hearth accepts"),
        ("created", '"yesterday"', '"created" must be a int or float, not str'),
        ("created", "true", '"created" must be a int or float, not bool'),
        ("title", '"\\ud800"', '"title" holds a lone surrogate (\\ud800)'),
        ("settings", "[]", '"settings" must be a dict, not list'),
        ("messages", "{}", '"messages" must be a list'),
        ("version", "2", "export version 2 is newer than this Hearth reads"),
    ],
)
def test_issue_regressions_refused_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, field: str, raw: str, expected: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(_with_marker([field]).replace(json.dumps(MARK), raw), encoding="utf-8")
    code = main(["chats", "import", str(path)])
    _out, err = capsys.readouterr()
    assert code == 1 and err.startswith("hearth: error: ") and err.count("\n") == 1, err
    assert expected in err
    assert main(["chats", "list"]) == 0 and "No chats yet" in capsys.readouterr()[0]


def test_message_ranges_and_control_characters_in_titles(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    bad = copy.deepcopy(VALID)
    bad["messages"][1]["tokens"] = -5
    path.write_text(json.dumps(bad))
    with ChatStore.open_default() as store, pytest.raises(ChatImportError, match="message 2: \"tokens\" is -5"):
        import_file(store, path)
    titled = copy.deepcopy(VALID)
    titled["title"] = "\x1b]0;pwn\x07 Title\nwith\tbreaks " + "x" * 900
    titled["messages"][1]["status"] = "streaming"
    path.write_text(json.dumps(titled))
    with ChatStore.open_default() as store:
        (chat,) = import_file(store, path)
        assert chat.title.startswith("]0;pwn Title with breaks xxx") and len(chat.title) == 500
        assert store.messages(chat.id)[1].status == "interrupted", "an exported live reply has no writer"


def _run_with_peak_rss_mb(code: str, timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``code`` in a fresh Python; its own peak RSS comes back on the last line of stderr.

    VmHWM, not ru_maxrss: the latter carries the forking parent's peak across exec.
    """
    reporter = (
        "import atexit, sys\n"
        "def peak():\n"
        "    lines = open('/proc/self/status').read().splitlines()\n"
        "    kb = next(line.split()[1] for line in lines if line.startswith('VmHWM'))\n"
        "    print('peak-kb', kb, file=sys.stderr)\n"
        "atexit.register(peak)\n"
    )
    result = subprocess.run([sys.executable, "-c", reporter + code], cwd=install_root(),
                            capture_output=True, text=True, timeout=timeout)
    peak_kb = int(result.stderr.rsplit("peak-kb ", 1)[1].split()[0])
    return result, peak_kb / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
def test_dev_zero_and_a_huge_file_stop_at_the_size_limit(tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("wb") as file:
        file.truncate(50 * 1024**3)  # 50 GB, sparse: refused from its size, never read
    for source in ("/dev/zero", str(huge)):
        started = time.monotonic()
        result, peak_mb = _run_with_peak_rss_mb(
            f"from app.cli import main\nsys.exit(main(['chats', 'import', {source!r}]))", timeout=60)
        elapsed = time.monotonic() - started
        assert result.returncode == 1, result.stderr
        assert f"larger than {MAX_IMPORT_BYTES / 1e6:.1f} MB" in result.stderr
        assert "Traceback" not in result.stderr
        assert elapsed < 20 and peak_mb < 200, (source, elapsed, peak_mb)
        print(f"\n{source}: refused in {elapsed:.2f} s, peak RSS {peak_mb:.0f} MB", file=sys.stderr)


def test_nesting_bomb_and_bracket_flood_are_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "bomb.json"
    with ChatStore.open_default() as store:
        for text, expected in [
            ("[" * 200_000 + "]" * 200_000, "JSON nested too deeply"),
            ("[" + "[]," * 500_000 + "[]]", "more than 400,000 JSON objects and lists"),
            ("[" + '"ab",' * 1_100_000 + "1]", "or 1,000,000 values"),
            ('{"messages": [], "settings": ' + '{"a":' * 50 + "1" + "}" * 50 + "}",
             '"settings" is nested more than 16 deep'),
            ("\xff\xfe junk", "not valid JSON"),
        ]:
            path.write_text(text, encoding="utf-8")
            started = time.monotonic()
            with pytest.raises(ChatImportError, match=expected):
                import_file(store, path)
            assert time.monotonic() - started < 5
        path.write_bytes(b"\xff\xfe junk")
        with pytest.raises(ChatImportError, match="not UTF-8 text"):
            import_file(store, path)
        assert store.chat_count() == 0
