"""``hearth chats``: list (newest first, JSON), export (md, json), import, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.chats.store import ChatStore
from app.cli import main

TRICKY = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Ünïcödé 日本語 🎉 and \"quotes\" \\ backslash"},
    {"role": "assistant", "content": "```python\nprint('fence')\n```\nand ````four```` ticks"},
    {"role": "user", "content": ""},
    {"role": "assistant", "content": "   \n\n  leading and trailing space  \n"},
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_is_newest_first_as_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    with ChatStore.open_default() as store:
        old = store.create_chat("Old chat", created=1000.0)
        new = store.create_chat("New chat about rust", created=2000.0)
        store.add_message(new.id, "user", "hi", created=2000.0)
    code, out, _ = run(capsys, "chats", "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["id"], r["title"]) for r in rows] == [(new.id, "New chat about rust"), (old.id, "Old chat")]
    assert rows[0]["messages"] == 1
    code, out, _ = run(capsys, "chats", "list")
    assert code == 0 and out.index("New chat about rust") < out.index("Old chat")
    code, out, _ = run(capsys, "chats", "list", "--json", "--search", "rust")
    assert [r["id"] for r in json.loads(out)] == [new.id]


def test_empty_list_says_how_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "chats", "list")
    assert code == 0 and "No chats yet" in out
    code, out, _ = run(capsys, "chats", "list", "--json")
    assert json.loads(out) == []


def test_json_round_trip_keeps_every_message_exactly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "in.json"
    source.write_text(json.dumps({"title": "Tricky ✨", "messages": TRICKY}), encoding="utf-8")
    code, out, _ = run(capsys, "chats", "import", str(source))
    assert code == 0 and "Imported chat 1: Tricky ✨ (5 messages)" in out
    code, exported, _ = run(capsys, "chats", "export", "1", "--format", "json")
    assert code == 0
    data = json.loads(exported)
    assert data["title"] == "Tricky ✨"
    assert [{"role": m["role"], "content": m["content"]} for m in data["messages"]] == TRICKY
    # Re-import the export: a second chat, identical messages and metadata.
    again = tmp_path / "again.json"
    again.write_text(exported, encoding="utf-8")
    assert run(capsys, "chats", "import", str(again))[0] == 0
    code, second, _ = run(capsys, "chats", "export", "2", "--format", "json")
    first_data, second_data = json.loads(exported), json.loads(second)
    for key in ("id",):
        first_data.pop(key), second_data.pop(key)
    assert first_data == second_data


def test_markdown_export_is_readable_and_keeps_code_fences(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with ChatStore.open_default() as store:
        chat = store.insert_chat("Fences", TRICKY, model="SmolLM2")
    code, out, _ = run(capsys, "chats", "export", str(chat.id), "--format", "md")
    assert code == 0
    assert out.startswith("# Fences\n")
    assert "## You\n\nÜnïcödé 日本語 🎉" in out
    assert "```python\nprint('fence')\n```" in out
    assert "*(empty)*" in out
    target = tmp_path / "out.md"
    code, _, err = run(capsys, "chats", "export", str(chat.id), "-o", str(target))
    assert code == 0 and target.read_text(encoding="utf-8") == out and "Exported" in err


def test_minimal_import_takes_its_title_from_the_first_question(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "min.json"
    source.write_text(json.dumps([
        {"messages": [{"role": "user", "content": "Why is the sky blue?"}]},
        {"title": "Second", "messages": []},
    ]), encoding="utf-8")
    code, out, _ = run(capsys, "chats", "import", str(source))
    assert code == 0 and "Why is the sky blue?" in out and "Second (0 messages)" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON (line 1"),
        ('{"title": "x"}', '"messages" must be a list'),
        ('{"messages": [{"role": "robot", "content": "x"}]}', "message 1: \"role\" is 'robot'"),
        ('{"messages": [{"role": "user"}]}', 'message 1: "content" is missing'),
        ('{"messages": [{"role": "user", "content": 5}]}', '"content" must be a str, not int'),
        ('[{"messages": []}, 7]', "chat 2: expected a JSON object"),
    ],
)
def test_bad_imports_name_the_problem_and_import_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, message: str
) -> None:
    source = tmp_path / "bad.json"
    source.write_text(content, encoding="utf-8")
    code, _out, err = run(capsys, "chats", "import", str(source))
    assert code == 1 and err.startswith("hearth: error: ") and message in err
    assert "Traceback" not in err
    with ChatStore.open_default() as store:
        assert store.chat_count() == 0


def test_missing_file_and_unknown_chat(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "chats", "import", str(tmp_path / "nope.json"))
    assert code == 1 and "no such file" in err
    code, _, err = run(capsys, "chats", "export", "99")
    assert code == 1 and "no chat with id 99" in err


@pytest.mark.slow
def test_hearth_chat_records_continues_and_can_skip_saving(
    capsys: pytest.CaptureFixture[str], smollm2: Path
) -> None:
    common = ["--max-tokens", "8", "--temp", "0", "--seed", "1"]
    code, out, _ = run(capsys, "chat", str(smollm2), "-p", "Say hello.", *common)
    assert code == 0 and out.strip()
    with ChatStore.open_default() as store:
        (chat,) = store.list_chats()
        first = store.messages(chat.id)
    assert [(m.role, m.status) for m in first] == [("user", "complete"), ("assistant", "complete")]
    assert first[0].content == "Say hello." and first[1].content.strip() == out.strip()
    assert first[1].tokens and first[1].tokens > 0
    code, _, _ = run(capsys, "chat", str(smollm2), "--chat", str(chat.id), "-p", "Again.", *common)
    assert code == 0
    code, _, _ = run(capsys, "chat", str(smollm2), "--no-save", "-p", "Not kept.", *common)
    assert code == 0
    with ChatStore.open_default() as store:
        assert store.chat_count() == 1
        assert [m.content for m in store.messages(chat.id)][2] == "Again."
        assert store.message_count(chat.id) == 4
    code, _, err = run(capsys, "chat", str(smollm2), "--chat", "999", "-p", "x")
    assert code == 1 and "no chat with id 999" in err
