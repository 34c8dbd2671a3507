"""Every llama.cpp chat template, in a tiny GGUF, renders byte for byte as Transformers renders it."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from transformers.utils.chat_template_utils import render_jinja_template

from app.catalog import load_catalog
from app.engine.chat_format import ChatFormat, resolve_chat_format
from app.engine.templates import Message, TemplateError
from tests.engine.tiny_gguf import write_tiny_gguf

TEMPLATES_DIR = Path(__file__).parent / "llama_templates"
TEMPLATES = sorted(TEMPLATES_DIR.glob("*.jinja"))

CONVERSATIONS: dict[str, list[Message]] = {
    "one-turn": [Message("user", "Hello, who are you?")],
    "multi-turn": [Message("user", "Hi"), Message("assistant", "Hello! How can I help?"),
                   Message("user", "Tell me a joke.")],
    "system": [Message("system", "You are terse."), Message("user", "Hi"), Message("assistant", "Hi."),
               Message("user", "Bye")],
    "thinking": [Message("user", "2+2?"), Message("assistant", "<think>\nadd them\n</think>\n\n4"),
                 Message("user", "and 3+3?")],
    "unicode": [Message("user", "Grüße, 你好 <b>&amp;</b> \"quoted\" \\ back")],
}
TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]


@functools.cache
def chat_format_for(template: Path, directory: Path) -> ChatFormat:
    path = write_tiny_gguf(directory / f"{template.stem}.gguf", chat_template=template.read_text(),
                           name=template.stem, chatml_specials=True)
    fmt = resolve_chat_format(path, load_catalog())
    assert fmt.source == "gguf" and fmt.template.dialect == "transformers"
    return fmt


def transformers_render(source: str, messages: list[Message], fmt: ChatFormat,
                        tools: list[dict[str, Any]] | None = None) -> str:
    rendered, _ = render_jinja_template(
        [[m.as_dict() for m in messages]], tools=tools, chat_template=source, add_generation_prompt=True,
        bos_token=fmt.bos_token, eos_token=fmt.eos_token)
    return str(rendered[0])


def compare(fmt: ChatFormat, name: str) -> tuple[str, str]:
    """("same" | "both-raise" | "mismatch" | "hearth-raises" | "transformers-raises", detail)."""
    source = fmt.template.jinja
    if name == "tools":
        messages = CONVERSATIONS["one-turn"]

        def ours() -> str:
            return fmt.template.render(messages, bos_token=fmt.bos_token, eos_token=fmt.eos_token,
                                       model_name=fmt.model_name, tools=TOOLS)
        tools: list[dict[str, Any]] | None = TOOLS
    else:
        messages = fmt.template_messages(CONVERSATIONS[name])

        def ours() -> str:
            return fmt.render(CONVERSATIONS[name])
        tools = None
    try:
        reference = transformers_render(source, messages, fmt, tools)
    except Exception as exc:  # whatever Transformers raises, Hearth must give one clean line
        try:
            ours()
        except TemplateError as ours_exc:
            text = str(ours_exc)
            assert "\n" not in text and "Traceback" not in text and len(text) < 600, text
            return "both-raise", text
        return "transformers-raises", f"{type(exc).__name__}: {exc}"
    try:
        rendered = ours()
    except TemplateError as exc:
        return "hearth-raises", str(exc)
    if rendered == reference:
        return "same", ""
    at = next(i for i, (a, b) in enumerate(zip(rendered + "\0", reference + "\0", strict=False)) if a != b)
    return "mismatch", f"at {at}: hearth {rendered[at - 30:at + 30]!r} / transformers {reference[at - 30:at + 30]!r}"


CASES = [*CONVERSATIONS, "tools"]


def test_all_seventy_llama_cpp_templates_are_vendored() -> None:
    assert len(TEMPLATES) == 70
    assert (TEMPLATES_DIR / "LICENSE").read_text().startswith("MIT License")


@pytest.mark.parametrize("template", TEMPLATES, ids=[t.stem for t in TEMPLATES])
def test_file_template_renders_as_transformers_does(template: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    fmt = chat_format_for(template, tmp_path_factory.getbasetemp())
    outcomes = {case: compare(fmt, case) for case in CASES}
    bad = {case: o for case, o in outcomes.items() if o[0] not in ("same", "both-raise")}
    assert not bad, bad


@pytest.mark.slow
def test_parity_tally(tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]) -> None:
    tally = {"same": 0, "both-raise": 0, "mismatch": 0, "hearth-raises": 0, "transformers-raises": 0}
    for template in TEMPLATES:
        fmt = chat_format_for(template, tmp_path_factory.getbasetemp())
        for case in CASES:
            tally[compare(fmt, case)[0]] += 1
    with capsys.disabled():
        print(f"\ntemplate parity over {len(TEMPLATES)} llama.cpp templates x {len(CASES)} conversations: "
              f"{tally['same']} rendered identically, {tally['both-raise']} raised in both (clean message), "
              f"{tally['mismatch'] + tally['hearth-raises'] + tally['transformers-raises']} mismatches")
    assert tally["mismatch"] == tally["hearth-raises"] == tally["transformers-raises"] == 0
    assert tally["same"] >= 300
