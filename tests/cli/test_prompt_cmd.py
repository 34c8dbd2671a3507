"""``hearth prompt`` prints the exact prompt string, in command-line turn order, as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.engine.tiny_gguf import write_tiny_gguf


def hearth(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=60,
        env=dict(os.environ),
    )


def test_llama2_multi_turn_with_system_is_byte_exact() -> None:
    result = hearth("prompt", "llama-2-13b-chat", "--system", "Be brief.", "--user", "Hi",
                    "--assistant", "Hello!", "--user", "Bye")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]"
    )


def test_without_system_there_is_no_system_message() -> None:
    result = hearth("prompt", "stablebeluga2-70b", "--user", "Hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "### User:\nHi\n\n### Assistant:\n"


def test_gguf_path_without_template_uses_labelled_fallback(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "bare.gguf")
    result = hearth("prompt", str(path), "--user", "a", "--assistant", "b", "--user", "c",
                    "--show-format")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n"
        "<|im_start|>user\nc<|im_end|>\n<|im_start|>assistant\n"
    )
    assert "a guess" in result.stderr


def test_bad_model_and_hostile_template_are_one_line_errors(tmp_path: Path) -> None:
    missing = hearth("prompt", str(tmp_path / "missing.gguf"), "--user", "x")
    assert missing.returncode == 1
    assert missing.stderr.startswith("hearth: error:") and "does not exist" in missing.stderr
    evil = write_tiny_gguf(tmp_path / "evil.gguf", name="Evil",
                           chat_template="{{ cycler.__init__.__globals__.os.getcwd() }}")
    result = hearth("prompt", str(evil), "--user", "x")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Evil" in result.stderr and "unsafe" in result.stderr


def _stored_chat(system: str | None, remedy: str | None = None) -> int:
    """A chat with a failed reply in it (left out of the prompt), stored as the window stores it."""
    from app.chats.store import ChatStore
    from app.conversation import Conversation

    with ChatStore.open_default() as store:
        conversation = Conversation(store)
        conversation.set_system_message(system)
        conversation.add_user("Hello", model_name="m")
        reply = conversation.start_reply("m")
        reply.append("Hi there!")
        reply.finish("complete")
        conversation.add_user("Tell me a joke", model_name="m")
        failed = conversation.start_reply("m")
        failed.append("half a jo")
        failed.finish("error")
        if remedy is not None:
            conversation.set_remedy(remedy)
        assert conversation.chat is not None
        return conversation.chat.id


def _window_prompt(model: Path, chat_id: int, pending: str) -> str:
    """What the chat page builds for this chat's next reply (a copy, so the chat stays as it was)."""
    from app.catalog import load_catalog
    from app.chats.store import ChatStore
    from app.conversation import Conversation
    from app.engine.chat_format import resolve_chat_format

    with ChatStore.open_default() as store:
        conversation = Conversation.detached(store, chat_id)
    return conversation.build_prompt(resolve_chat_format(model, load_catalog()), pending_user=pending)


def test_a_stored_chat_renders_as_the_window_sends_it(smollm2: Path) -> None:
    """No system message of its own: the catalogue's default for SmolLM2 opens the prompt; the failed
    reply is left out; the --user message is the one about to be sent."""
    chat_id = _stored_chat(None)
    result = hearth("prompt", str(smollm2), "--chat", str(chat_id), "--user", "Another?")
    assert result.returncode == 0, result.stderr
    assert result.stdout == _window_prompt(smollm2, chat_id, "Another?")
    assert result.stdout.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert "half a jo" not in result.stdout and result.stdout.endswith(
        "<|im_start|>user\nAnother?<|im_end|>\n<|im_start|>assistant\n")
    overridden = hearth("prompt", str(smollm2), "--chat", str(chat_id), "--system", "Be terse.")
    assert overridden.returncode == 0, overridden.stderr
    assert overridden.stdout.startswith("<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHello")


def test_a_stored_chat_keeps_its_remedy_and_bad_requests_say_why(tmp_path: Path) -> None:
    template = (Path(__file__).parents[1] / "engine" / "llama_templates" / "google-gemma-2-2b-it.jinja").read_text()
    gemma = write_tiny_gguf(tmp_path / "gemma.gguf", name="Gemma", chat_template=template)
    refused = _stored_chat("Answer in French.")
    result = hearth("prompt", str(gemma), "--chat", str(refused), "--user", "Encore?")
    assert result.returncode == 1 and "--fold-system" in result.stderr and not result.stdout
    kept = _stored_chat("Answer in French.", remedy="fold_system+merge_turns")
    result = hearth("prompt", str(gemma), "--chat", str(kept), "--user", "Encore?")
    assert result.returncode == 0, result.stderr
    assert result.stdout == _window_prompt(gemma, kept, "Encore?")
    assert "Answer in French." in result.stdout and "<start_of_turn>system" not in result.stdout
    for extra in (["--assistant", "x"], ["--user", "a", "--user", "b"], ["--no-generation-prompt"]):
        bad = hearth("prompt", str(gemma), "--chat", str(kept), *extra)
        assert bad.returncode == 1 and bad.stderr.startswith("hearth: error:") and "--chat" in bad.stderr
    missing = hearth("prompt", str(gemma), "--chat", "999")
    assert missing.returncode == 1 and "no chat with id 999" in missing.stderr
