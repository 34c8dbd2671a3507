"""The conversation core without Qt: history, system message, edits, sampling, and one prompt for both front ends."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from app.catalog import load_catalog
from app.chats.store import ChatStore
from app.cli import build_parser
from app.cli.chat_cmd import _answer, open_conversation
from app.conversation.conversation import Conversation, in_history
from app.conversation.settings import ChatSettings
from app.engine.chat_format import ChatFormat, resolve_chat_format
from app.engine.chat_session import ChatSession
from app.engine.sampling import SamplingError, merge_sampling
from app.paths import app_dirs
from app.templates.prompt import Message
from tests.conversation.recording_client import RecordingClient

HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "<think>greet back</think>Hi! How can I help?"},
    {"role": "user", "content": "Tell me a joke"},
    {"role": "assistant", "content": "half a joke", "status": "error"},
    {"role": "assistant", "content": "", "status": "stopped"},
    {"role": "user", "content": "Try again"},
    {"role": "assistant", "content": "Why did the", "status": "interrupted"},
]


@pytest.fixture
def smollm2_format(smollm2: Path) -> ChatFormat:
    return resolve_chat_format(smollm2, load_catalog())


def _stored_chat(path: Path, **chat: Any) -> int:
    with ChatStore(path) as store:
        return store.insert_chat("A chat", HISTORY, model="SmolLM2", **chat).id


def test_one_history_rule_for_every_status() -> None:
    store = ChatStore(Path(":memory:"))
    chat = store.insert_chat("t", HISTORY)
    conversation = Conversation(store, chat)
    kept = [(m.role, m.content) for m in conversation.history()]
    assert kept == [
        ("user", "Hello"), ("assistant", "<think>greet back</think>Hi! How can I help?"),
        ("user", "Tell me a joke"), ("user", "Try again"), ("assistant", "Why did the"),
    ], "failed and empty replies are left out; stopped and interrupted text stays"
    streaming = store.add_message(chat.id, "assistant", "still going", status="streaming")
    assert not in_history(streaming)


def test_system_message_precedence() -> None:
    store = ChatStore(Path(":memory:"))
    draft = Conversation(store)
    assert draft.system_message("model default") == "model default"
    draft.set_system_message("")
    assert draft.system_message("model default") is None, "an empty message means none at all"
    draft.set_system_message("Be brief.")
    draft.add_user("hi", model_name="m", model_path="/m.gguf")
    assert draft.chat is not None and draft.chat.system_message == "Be brief.", "the draft's is stored"
    assert draft.settings.model_path == "/m.gguf"
    assert draft.system_message("model default") == "Be brief."
    draft.system_override = "Only this session."
    assert draft.system_message("model default") == "Only this session."
    assert store.chat(draft.chat.id).system_message == "Be brief."


def test_edit_regenerate_and_continue(smollm2_format: ChatFormat) -> None:
    store = ChatStore(Path(":memory:"))
    conversation = Conversation(store, store.insert_chat("t", HISTORY))
    last = conversation.continuable()
    assert last is not None and last.content == "Why did the"
    full = conversation.build_prompt(smollm2_format, continuing=last)
    assert full.endswith("<|im_start|>assistant\nWhy did the"), "the model carries on from the stored text"
    reply = conversation.start_reply("m", continuing=last)
    reply.append(" chicken")
    done = reply.finish("complete")
    assert done.content == "Why did the chicken" and store.message(done.id).status == "complete"

    assert conversation.drop_last_reply()
    assert [m.content for m in store.messages(conversation.chat.id)][-1] == "Try again"  # type: ignore[union-attr]

    joke = next(m for m in conversation.messages if m.content == "Tell me a joke")
    assert conversation.begin_edit(joke)
    conversation.add_user("Tell me a fact")
    contents = [m.content for m in store.messages(conversation.chat.id)]  # type: ignore[union-attr]
    assert contents[-1] == "Tell me a fact" and "Tell me a joke" not in contents and "Try again" not in contents
    assert [m.content for m in conversation.messages] == contents


def test_sampling_keeps_the_last_good_value_and_names_the_bad_one() -> None:
    merged = merge_sampling({"temperature": 0.3, "top_k": 20}, {"temperature": "hot", "top_p": 2.0})
    assert merged.settings.temperature == 0.3 and merged.settings.top_k == 20 and merged.settings.top_p == 0.95
    assert merged.problems == ["sampling setting temperature must be a number, not 'hot'",
                               "sampling setting top_p must be between 0 and 1, not 2.0"]
    with pytest.raises(SamplingError, match="temperature must be a number"):
        merged.or_raise()
    store = ChatStore(Path(":memory:"))
    conversation = Conversation(store)
    conversation.set_sampling({"temperature": 0.2})
    problem = conversation.set_sampling({"temperature": -1, "max_tokens": 64})
    assert problem.problems == ["sampling setting temperature must be between 0 and 100, not -1"]
    assert dict(conversation.settings.sampling) == {"temperature": 0.2, "max_tokens": 64}


def test_settings_round_trip_keeps_unknown_keys() -> None:
    stored = {"model_path": "/a.gguf", "sampling": {"top_k": 5}, "template_remedy": "fold_system", "pinned_tool": 1}
    settings = ChatSettings.from_stored(stored)
    assert settings.model_path == "/a.gguf" and settings.template_remedy == "fold_system"
    assert settings.to_stored() == stored
    assert ChatSettings.from_stored({"template_remedy": "rm -rf"}).template_remedy is None


def test_the_window_and_the_cli_build_byte_identical_prompts(
    tmp_path: Path, smollm2: Path, smollm2_format: ChatFormat
) -> None:
    """The same stored chat, one more message: the window's path and `hearth chat --chat ID -p` agree."""
    db = app_dirs().chats_db
    db.parent.mkdir(parents=True, exist_ok=True)
    chat_id = _stored_chat(db, system_message="You are terse.",
                           settings={"model_path": str(smollm2), "sampling": {"temperature": 0.1}})
    window_db = tmp_path / "window.sqlite3"
    shutil.copy(db, window_db)

    # The window: ChatPage.open_chat, send (add_user), then _start_reply's build_prompt.
    window = Conversation.open(ChatStore(window_db), chat_id)
    window.add_user("And one more?", model_name="SmolLM2", model_path=str(smollm2))
    gui_prompt = window.build_prompt(smollm2_format)

    # The command line: the code `hearth chat MODEL --chat ID -p ...` runs.
    args = build_parser().parse_args(["chat", str(smollm2), "--chat", str(chat_id), "-p", "And one more?"])
    cli = open_conversation(args)
    client = RecordingClient()
    session = ChatSession(client, smollm2_format, remedy=cli.remedy)  # type: ignore[arg-type]
    try:
        _answer(session, [Message("user", args.prompt)], verbose=False, conversation=cli)
    finally:
        cli.store.close()
    assert client.prompts == [gui_prompt]
    assert gui_prompt.startswith("<|im_start|>system\nYou are terse.<|im_end|>\n")
    assert "half a joke" not in gui_prompt and gui_prompt.endswith("<|im_start|>assistant\n")
    assert cli.sampling(None).settings.temperature == 0.1, "the chat's own sampling, in both"
    with ChatStore(db) as store:
        assert [m.content for m in store.messages(chat_id)][-2:] == ["And one more?", "Sure."]
