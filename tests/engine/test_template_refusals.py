"""Templates that refuse a conversation say so in words and name the remedy they accept; thinking in history."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.catalog import load_catalog
from app.engine.chat_format import ChatFormat, apply_remedy, resolve_chat_format
from app.engine.reasoning import split_thinking
from app.engine.templates import Message, TemplateRefusal
from tests.engine.tiny_gguf import write_tiny_gguf

TEMPLATES = Path(__file__).parent / "llama_templates"


def _format(tmp_path: Path, stem: str) -> ChatFormat:
    path = write_tiny_gguf(tmp_path / f"{stem}.gguf", chat_template=(TEMPLATES / f"{stem}.jinja").read_text(),
                           name=stem)
    return resolve_chat_format(path, load_catalog())


def test_gemma_refuses_a_system_message_and_accepts_it_folded(tmp_path: Path) -> None:
    fmt = _format(tmp_path, "google-gemma-2-2b-it")
    history = [Message("system", "Answer in French."), Message("user", "Hello")]
    with pytest.raises(TemplateRefusal) as caught:
        fmt.render(history)
    refusal = caught.value
    assert refusal.remedy == "fold_system"
    assert "System role not supported" in str(refusal) and "--fold-system" in str(refusal)
    assert "\n" not in str(refusal)
    prompt = fmt.render(history, remedy="fold_system")
    assert prompt == ("<bos><start_of_turn>user\nAnswer in French.\n\nHello<end_of_turn>\n"
                      "<start_of_turn>model\n").replace("<bos>", fmt.bos_token)


def test_mistral_refuses_two_user_turns_in_a_row_and_accepts_them_joined(tmp_path: Path) -> None:
    fmt = _format(tmp_path, "mistralai-Mistral-Nemo-Instruct-2407")
    history = [Message("user", "Hello"), Message("user", "Are you there?")]
    with pytest.raises(TemplateRefusal) as caught:
        fmt.render(history)
    assert caught.value.remedy == "merge_turns"
    assert "alternate" in str(caught.value)
    prompt = fmt.render(history, remedy="merge_turns")
    assert "[INST]Hello\n\nAre you there?[/INST]" in prompt


def test_remedies_reshape_the_conversation() -> None:
    history = [Message("system", "S"), Message("user", "a"), Message("assistant", "b"), Message("user", "c"),
               Message("user", "d")]
    assert apply_remedy(history, "fold_system") == [Message("user", "S\n\na"), Message("assistant", "b"),
                                                     Message("user", "c"), Message("user", "d")]
    assert apply_remedy(history, "merge_turns")[-1] == Message("user", "c\n\nd")


@pytest.mark.parametrize(("text", "thinking", "answer", "open_"), [
    ("<think>\nsum\n</think>\n\n4", "sum", "4", False),
    ("<think>still going", "still going", "", True),
    ("plain answer", None, "plain answer", False),
    ("weighing it</think>\nyes", "weighing it", "yes", False),  # DeepSeek-R1 opens <think> in the prompt
    ("<|begin_of_thought|>hm<|end_of_thought|>ok", "hm", "ok", False),
    ("◁think▷k◁/think▷done", "k", "done", False),
    ("[THINK]x[/THINK]y", "x", "y", False),
])
def test_split_thinking(text: str, thinking: str | None, answer: str, open_: bool) -> None:
    split = split_thinking(text)
    assert (split.thinking, split.answer, split.open) == (thinking, answer, open_)


def test_thinking_is_kept_out_of_the_next_turn_for_a_template_that_knows_nothing_of_it(tmp_path: Path) -> None:
    fmt = _format(tmp_path, "meta-llama-Llama-3.2-3B-Instruct")
    history = [Message("user", "2+2?"), Message("assistant", "<think>\nadd\n</think>\n\n4"), Message("user", "ok")]
    prompt = fmt.render(history)
    assert "add" not in prompt and "<think>" not in prompt
    assert "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>" in prompt


def test_thinking_goes_to_reasoning_content_for_a_template_that_reads_it(tmp_path: Path) -> None:
    fmt = _format(tmp_path, "Qwen-Qwen3-0.6B")
    history = [Message("user", "2+2?"), Message("assistant", "<think>\nadd\n</think>\n\n4")]
    shaped = fmt.template_messages(history)
    assert shaped[1] == Message("assistant", "4", "add")
    # The last reply keeps its thinking (Qwen3 shows reasoning after the last user turn).
    assert "<think>\nadd\n</think>\n\n4" in fmt.render(history, add_generation_prompt=False)
    later = fmt.render([*history, Message("user", "and 3+3?")])
    assert "add" not in later


def test_gemma_with_a_system_message_and_two_user_turns_needs_both_remedies(tmp_path: Path) -> None:
    fmt = _format(tmp_path, "google-gemma-2-2b-it")
    history = [Message("system", "S."), Message("user", "a"), Message("user", "b")]
    with pytest.raises(TemplateRefusal) as caught:
        fmt.render(history)
    assert caught.value.remedy == "fold_system+merge_turns"
    assert "--fold-system" in str(caught.value) and "--merge-turns" in str(caught.value)
    assert "<start_of_turn>user\nS.\n\na\n\nb<end_of_turn>" in fmt.render(history, remedy=caught.value.remedy)


def test_markdown_export_keeps_the_thinking_folded_and_json_keeps_it_whole() -> None:
    from app.chats.records import Chat, StoredMessage
    from app.chats.transfer import chat_to_json, chat_to_markdown

    chat = Chat(id=1, title="t", created=0.0, updated=0.0, model="m", system_message=None, settings={})
    reply = StoredMessage(id=2, chat_id=1, position=1, role="assistant",
                          content="<think>\nstep one\nstep two\n</think>\n\nDone.", created=0.0)
    markdown = chat_to_markdown(chat, [reply])
    assert "<details><summary>Thinking</summary>\n\n> step one\n> step two\n\n</details>\n\nDone." in markdown
    assert chat_to_json(chat, [reply])["messages"][0]["content"] == reply.content
