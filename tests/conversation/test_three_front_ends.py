"""One chat, three front ends: the window, `hearth chat` and the API server build byte-identical prompts.

Each path resolves the model's format as its front end does and renders through the real template
engine (real GGUF files whose templates are real models' templates); only the engine process that
would answer is left out.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from app.catalog import load_catalog
from app.chats.store import ChatStore
from app.cli import build_parser
from app.cli.chat_cmd import _answer, open_conversation
from app.conversation.conversation import Conversation
from app.conversation.prompt import request_prompt
from app.engine.chat_format import resolve_chat_format
from app.engine.chat_session import ChatSession
from app.formats.gguf_meta import read_gguf_metadata
from app.library.installed import resolve_model_path
from app.paths import app_dirs
from app.server.requests import parse_chat, parse_json
from app.templates.prompt import Message, TemplateRefusal
from tests.conversation.recording_client import RecordingClient
from tests.engine.tiny_gguf import write_tiny_gguf

TEMPLATES = Path(__file__).parents[1] / "engine" / "llama_templates"
THOUGHT = "They greet me, so I greet back."
HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": f"<think>\n{THOUGHT}\n</think>\n\nHi! How can I help?"},
    {"role": "user", "content": "Tell me a joke"},
    {"role": "assistant", "content": "half a joke", "status": "error"},  # failed: left out everywhere
    {"role": "user", "content": "Please?"},  # so two user turns in a row
    {"role": "assistant", "content": "Why did the chicken cross the road? To get to the other side."},
]
PENDING = "And a shorter one?"
SMOLLM_DEFAULT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def _model(tmp_path: Path, name: str, smollm2: Path) -> Path:
    if name == "smollm2":
        return smollm2  # the catalogue's ChatML and the catalogue's default system message
    return write_tiny_gguf(tmp_path / f"{name}.gguf", chat_template=(TEMPLATES / f"{name}.jinja").read_text(),
                           name=name)


def _window(db: Path, chat_id: int, model: Path) -> tuple[str, str | None]:
    """ChatPage: open_chat, send (add_user), _start_reply's build_prompt; a refusal offers the
    remedy it names, and the button (apply_remedy) keeps it for the chat and builds again."""
    chat_format = resolve_chat_format(model, load_catalog(), models_dir=app_dirs().models)
    window = Conversation.open(ChatStore(db), chat_id)
    try:
        window.add_user(PENDING, model_name="m", model_path=str(model))
        try:
            return window.build_prompt(chat_format), None
        except TemplateRefusal as refusal:
            assert refusal.remedy is not None, str(refusal)
            window.set_remedy(refusal.remedy)
            return window.build_prompt(chat_format), refusal.remedy
    finally:
        window.store.close()


def _cli(chat_id: int, model: Path, remedy: str | None) -> str:
    """`hearth chat MODEL --chat ID -p TEXT`: the refusal names the flag; run again with it."""
    catalog = load_catalog()

    def run(*flags: str) -> tuple[Conversation, ChatSession, RecordingClient, str]:
        args = build_parser().parse_args(["chat", str(model), "--chat", str(chat_id), "-p", PENDING, *flags])
        path = resolve_model_path(args.model, catalog)
        chat_format = resolve_chat_format(path, catalog, template_override=args.template,
                                          meta=read_gguf_metadata(path))
        conversation = open_conversation(args)
        client = RecordingClient()
        session = ChatSession(client, chat_format, remedy=conversation.remedy)  # type: ignore[arg-type]
        return conversation, session, client, args.prompt

    flags = [f"--{part.replace('_', '-')}" for part in remedy.split("+")] if remedy else []
    if remedy is not None:  # run()'s check before the model loads: the refusal names the flags
        conversation, session, _, prompt = run()
        try:
            with pytest.raises(TemplateRefusal) as refused:
                conversation.build_prompt(session.chat_format, pending_user=prompt)
        finally:
            conversation.store.close()
        assert refused.value.remedy == remedy and all(flag in str(refused.value) for flag in flags)
    conversation, session, client, prompt = run(*flags)
    try:
        _answer(session, [Message("user", prompt)], verbose=False, conversation=conversation)
    finally:
        conversation.store.close()
    assert len(client.prompts) == 1
    return client.prompts[0]


def _api(db: Path, chat_id: int, model: Path, own_system: str | None) -> str:
    """POST /v1/chat/completions with what a client of that chat holds: its system message (none
    sent when the chat has none of its own), the turns it saw, and the new question."""
    with ChatStore(db) as store:
        shown = [m for m in store.messages(chat_id) if m.status != "error"]
    messages = [{"role": "system", "content": own_system}] if own_system is not None else []
    messages += [{"role": m.role, "content": m.content} for m in shown]
    messages.append({"role": "user", "content": PENDING})
    body = parse_json(json.dumps({"model": model.stem, "messages": messages}).encode())
    request = parse_chat(body)
    # What EngineBridge._load_blocking resolves, and what EngineBridge.render calls.
    chat_format = resolve_chat_format(model, load_catalog(), models_dir=app_dirs().models,
                                      meta=read_gguf_metadata(model))
    return request_prompt(chat_format, request.messages, request.tools)


CASES = [
    # (template, the chat's own system message, the remedy its template needs)
    ("smollm2", None, None),
    ("smollm2", "", None),
    ("smollm2", "You are terse.", None),
    ("google-gemma-2-2b-it", "Answer in French.", "fold_system+merge_turns"),
    ("mistralai-Ministral-3-14B-Reasoning-2512", "Think first.", "merge_turns"),
    ("Qwen-Qwen3-0.6B", "Be brief.", None),
    ("meta-llama-Llama-3.2-3B-Instruct", None, None),
]


@pytest.mark.parametrize(("template", "own_system", "remedy"), CASES,
                         ids=[f"{t}-{'default' if s is None else 'none' if s == '' else 'own'}" for t, s, _ in CASES])
def test_window_cli_and_api_build_byte_identical_prompts(
    tmp_path: Path, smollm2: Path, template: str, own_system: str | None, remedy: str | None
) -> None:
    model = _model(tmp_path, template, smollm2)
    db = app_dirs().chats_db
    db.parent.mkdir(parents=True, exist_ok=True)
    with ChatStore(db) as store:
        chat_id = store.insert_chat("A chat", HISTORY, model="m", system_message=own_system).id
    window_db = tmp_path / "window.sqlite3"
    shutil.copy(db, window_db)

    api = _api(db, chat_id, model, own_system)
    window, offered = _window(window_db, chat_id, model)
    assert offered == remedy, "the window offers the remedy this template needs"
    cli = _cli(chat_id, model, remedy)
    assert window == cli == api

    assert "half a joke" not in window and window.count("Hello") == 1 and PENDING in window
    if template == "smollm2":
        expected = {None: SMOLLM_DEFAULT, "": None, "You are terse.": "You are terse."}[own_system]
        head = f"<|im_start|>system\n{expected}<|im_end|>\n" if expected else "<|im_start|>user\nHello"
        assert window.startswith(head), window[:120]
    if remedy and "fold_system" in remedy:
        assert f"{own_system}\n\nHello" in window, "the system message folded into the first message"
    if remedy and "merge_turns" in remedy:
        assert "Tell me a joke\n\nPlease?" in window, "the two user turns joined"
    # Earlier thinking: kept by a template that renders it, dropped for one that knows nothing of it.
    assert (THOUGHT in window) == (template == "mistralai-Ministral-3-14B-Reasoning-2512")
    assert "Hi! How can I help?" in window
    with ChatStore(window_db) as store:
        assert store.chat(chat_id).settings.get("template_remedy") == remedy, "the window keeps the remedy"


def test_an_api_request_reads_its_system_message_as_the_chats_own(smollm2: Path) -> None:
    chat_format = resolve_chat_format(smollm2, load_catalog())
    assert chat_format.system_message == SMOLLM_DEFAULT

    def prompt(*messages: tuple[str, str]) -> str:
        return request_prompt(chat_format, [Message(role, text) for role, text in messages])

    assert prompt(("user", "Hi")).startswith(f"<|im_start|>system\n{SMOLLM_DEFAULT}<|im_end|>\n")
    assert prompt(("system", ""), ("user", "Hi")).startswith("<|im_start|>user\nHi")
    assert prompt(("system", "Mine."), ("user", "Hi")).startswith("<|im_start|>system\nMine.<|im_end|>\n")
    placed = prompt(("user", "Hi"), ("system", "Later."), ("user", "Again"))
    assert SMOLLM_DEFAULT not in placed and "<|im_start|>system\nLater." in placed, \
        "a client that placed its own system message gets no default"
