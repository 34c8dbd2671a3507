"""The terminal output layer: generated hostile strings, and outside text through real commands."""

from __future__ import annotations

import io
import json
import random
import re
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.cli.terminal import SafeStream, safe_json, safe_line, safe_text
from app.errors import HearthError

# What a terminal would act on: C0/C1 controls, DEL, bidi overrides/isolates, line separators,
# lone surrogates. After the layer none of these may remain (block text keeps \n and \t).
RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
                         "\ud800-\udfff]")
ISSUE_TITLE = "\x1b]0;pwned\x07\x1b[2J"  # retitle the window, then clear the screen

# Pieces an attacker strings together: sequences, single controls, and ordinary text that must
# come through unchanged (accents, CJK, emoji with joiners, RTL script, backslashes).
HOSTILE_PIECES = [
    "\x1b]0;title\x07", "\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\", "\x1b[2J", "\x1b[31m",
    "\x1b[1A\x1b[K", "\x1bP+q\x1b\\", "\x9b31m", "\x9d0;x\x9c", "\x07", "\x08\x08\x08", "\r",
    "\r\n", "\n", "\t", "\x00", "\x7f", "\x85", "\u202e", "\u2066", "\u200f", "\u2028",
    "\ud800", "\udfff", "\x1b", "\x1b[", "]0;", "plain", "Ünïcödé", "日本語", "👩‍💻", "שלום",
    "\\x1b", " ", "%s{}",
]


def hostile_strings(count: int, seed: int = 19) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(HOSTILE_PIECES) for _ in range(rng.randint(1, 12))) for _ in range(count)]


def printable_part(text: str) -> str:
    return RAW_CONTROL.sub("", text)


def tally(name: str, tried: int, handled: int) -> None:
    print(f"\n[tally] {name}: {handled}/{tried} handled", file=sys.stderr)


def test_generated_hostile_strings_never_reach_the_terminal_raw() -> None:
    cases = hostile_strings(3000)
    handled = 0
    for text in cases:
        line, block = safe_line(text, limit=None), safe_text(text)
        stream_out = io.StringIO()
        stream = SafeStream(stream_out)
        for n in range(0, len(text), 3):  # pieces cut anywhere, as tokens arrive
            stream.write(text[n:n + 3])
        stream.close()
        streamed = stream_out.getvalue()
        assert not RAW_CONTROL.search(line), repr(line)
        assert "\n" not in line and "\r" not in line
        for out in (block, streamed):
            assert not RAW_CONTROL.search(out.replace("\n", "").replace("\t", "")), repr(out)
            out.encode("utf-8")  # a lone surrogate would fail here (and in print)
        assert streamed == block or "\r" in text, (text, streamed, block)
        # Every visible character is still there, in order: nothing is silently dropped.
        visible = iter(line)
        assert all(char in visible for char in printable_part(text)), (text, line)
        handled += 1
    tally("hostile terminal strings", len(cases), handled)
    assert handled == len(cases)


def test_escapes_are_visible_and_text_is_kept() -> None:
    assert safe_line(ISSUE_TITLE) == "\\x1b]0;pwned\\x07\\x1b[2J"
    assert safe_line("a\nb\tc") == "a\\x0ab\\x09c"
    assert safe_text("line 1\r\nline 2\n\tindented\x1b[31m") == "line 1\nline 2\n\tindented\\x1b[31m"
    assert safe_line("evil\u202egpj.exe") == "evil\\u202egpj.exe"
    assert safe_text("a\r\nb", join_crlf=False) == "a\\x0d\nb"
    assert safe_line("日本語 👩‍💻 Ünïcödé") == "日本語 👩‍💻 Ünïcödé"
    assert safe_line("lone \ud800 surrogate") == "lone \\ud800 surrogate"
    assert safe_line("x" * 10_000).endswith("… (6000 more characters)")


def test_stream_joins_a_crlf_split_across_pieces_and_escapes_a_lone_cr() -> None:
    out = io.StringIO()
    stream = SafeStream(out)
    for piece in ["Hello\r", "\nworld\r", "over", "written\r"]:
        stream.write(piece)
    stream.close()
    assert out.getvalue() == "Hello\nworld\\x0doverwritten\\x0d"


def test_safe_json_is_the_same_value_with_nothing_raw() -> None:
    for text in hostile_strings(500, seed=7):
        value = {"title": text, "n": [1, text]}
        safe = safe_json(json.dumps(value, ensure_ascii=False, indent=2))
        assert not RAW_CONTROL.search(safe.replace("\n", ""))
        # The value json's own ASCII escaping gives (a lone high and low surrogate pair up there too).
        assert json.loads(safe) == json.loads(json.dumps(value))


# -- real commands ----------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_issue_title_is_escaped_by_import_list_and_export(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "hostile.json"
    messages = [{"role": "user", "content": f"hi {ISSUE_TITLE}"},
                {"role": "assistant", "content": "line one\nline two \x1b]8;;http://x\x07"}]
    source.write_text(json.dumps({"title": ISSUE_TITLE, "model": "\x1b[31mred", "messages": messages}))
    outputs = [run(capsys, "chats", "import", str(source))]
    outputs.append(run(capsys, "chats", "list"))
    outputs.append(run(capsys, "chats", "list", "--json"))
    outputs.append(run(capsys, "chats", "export", "1"))
    outputs.append(run(capsys, "chats", "export", "1", "--format", "json"))
    for code, out, err in outputs:
        assert code == 0, err
        assert "\x1b" not in out + err and "\x07" not in out + err
    md = outputs[3][1]
    assert "line one\nline two \\x1b]8;;http://x\\x07" in md, "newlines of the text kept, ESC shown"
    exported = json.loads(outputs[4][1])
    assert exported["messages"][0]["content"] == f"hi {ISSUE_TITLE}", "JSON keeps the exact text"


def test_error_dispatcher_escapes_outside_text(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.cli.chats_cmd as chats_cmd

    def hostile(_args: object) -> int:
        raise HearthError(f"server said: {ISSUE_TITLE}\nsecond line \u202e")

    monkeypatch.setattr(chats_cmd, "run", hostile)
    code, _out, err = run(capsys, "chats", "list")
    assert code == 1
    assert err == "hearth: error: server said: \\x1b]0;pwned\\x07\\x1b[2J\\x0asecond line \\u202e\n"


def test_template_error_and_model_name_from_gguf_are_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tests.engine.tiny_gguf import write_tiny_gguf

    path = write_tiny_gguf(
        tmp_path / "evil.gguf", name=f"Evil {ISSUE_TITLE}",
        chat_template="{{ raise_exception('bad: " + ISSUE_TITLE.replace("\x1b", "\\x1b").replace(
            "\x07", "\\x07") + "') }}",
    )
    code, out, err = run(capsys, "prompt", str(path), "--user", "hi", "--show-format")
    assert code == 1 and err.startswith("hearth: error: "), err
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "\\x1b]0;pwned" in err, "the message still says what the template said"
    assert "Traceback" not in err


def test_prompt_output_keeps_lines_and_escapes_controls(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tests.engine.tiny_gguf import write_tiny_gguf

    path = write_tiny_gguf(tmp_path / "m.gguf", name=f"Name {ISSUE_TITLE}",
                           chat_template="{% for m in messages %}[{{ m.content }}]\n{% endfor %}")
    code, out, err = run(capsys, "prompt", str(path), "--user", f"a{ISSUE_TITLE}", "--show-format")
    assert code == 0, err
    assert out == "[a\\x1b]0;pwned\\x07\\x1b[2J]\n"
    assert "\x1b" not in err


def test_hub_file_and_branch_names_are_never_printed_raw(tmp_path: Path) -> None:
    import os
    import subprocess

    from app.paths import install_root
    from tests.hub.hub_server import HubServer

    server = HubServer().start()
    try:
        server.add_repo("evil/names", {"main": {
            f"model{ISSUE_TITLE}.gguf": b"GGUF" + b"\0" * 60,
            "ok\u202egpj.gguf": b"GGUF" + b"\1" * 60,
            "README.md": b"hi",
        }})
        env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HUB_DISABLE_TELEMETRY": "1"}
        result = subprocess.run(
            [sys.executable, "-m", "app", "download", "--list", "evil/names"], cwd=install_root(),
            env=env, capture_output=True, text=True, timeout=60,
        )
    finally:
        server.stop()
    everything = result.stdout + result.stderr
    assert result.returncode in (0, 1), everything
    assert "Traceback" not in everything
    assert not RAW_CONTROL.search(everything.replace("\n", "")), repr(everything)


def test_streamed_reply_in_hearth_chat_cannot_drive_the_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``hearth chat`` prints a reply through the layer: text, newlines, tabs and Unicode pass."""
    from app.cli.chat_cmd import _answer
    from app.engine.templates import Message

    pieces = ["Sure", "!\n\t- ", "日本", "語 👩‍💻", "\x1b]0;", "owned\x07", "\x1b[2J", "\r", "\n", "done\u202e"]

    class Replying:
        """The one thing _answer asks of a session: the reply's pieces as the engine streams them."""

        last_stats = None

        def reply(self, history: list[Message]) -> list[str]:
            return pieces

    text = _answer(Replying(), [Message("user", "hi")], verbose=False)  # type: ignore[arg-type]
    out, _ = capsys.readouterr()
    assert text == "".join(pieces), "the reply itself (what is stored) is unchanged"
    assert out == "Sure!\n\t- 日本語 👩‍💻\\x1b]0;owned\\x07\\x1b[2J\ndone\\u202e\n"


def test_an_unexpected_exception_is_one_safe_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.cli.chats_cmd as chats_cmd

    def broken(_args: object) -> int:
        raise OverflowError(f"date value out of range {ISSUE_TITLE}")

    monkeypatch.setattr(chats_cmd, "run", broken)
    code, _out, err = run(capsys, "chats", "list")
    assert code == 70 and err.count("\n") == 1 and "Traceback" not in err and "\x1b" not in err
    assert err.startswith("hearth: internal error: OverflowError: date value out of range \\x1b]0;")
    assert "HEARTH_DEBUG=1" in err
    monkeypatch.setenv("HEARTH_DEBUG", "1")
    with pytest.raises(OverflowError):
        main(["chats", "list"])
