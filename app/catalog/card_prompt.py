"""The prompt format a card or a GGUF file gives: one of ours by name, or a new template from its text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.catalog.card import CardPrompt
from app.templates.prompt import Message, PromptTemplate, TemplateError

_USER_MARK = re.compile(r"(?:###\s*)?(?:USER|User|Human|HUMAN|Instruction|Prompter|Question)\s*:?\s*$")
_SYSTEM_MARK = re.compile(r"^(?:###\s*)?(?:SYSTEM|System)\s*:\s*")
_TURN_MARK = re.compile(r"(\S[^\n]*?:[ \t]*)$")
_MAX_SYSTEM = 2000
# Example text cards put in the system slot ("This is a system prompt, please behave ...").
_PLACEHOLDER = re.compile(r"system (?:prompt|message)|your prompt|prompt here|\binsert\b", re.IGNORECASE)


@dataclass(frozen=True)
class ChosenTemplate:
    """The template a model gets: ``spec`` is set when it is new (made from the card or file)."""

    id: str
    spec: dict[str, Any] | None
    system_message: str | None
    origin: str  # "ours", "card" or "gguf"


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def known_template(name: str | None, text: str | None, templates: dict[str, dict[str, Any]]) -> str | None:
    """The id of our template whose name (or exact single-turn text) the card gives."""
    if name:
        wanted = _key(name)
        for template_id, spec in templates.items():
            if wanted in (_key(template_id), _key(spec["name"])):
                return template_id
    if text:
        for template_id, spec in templates.items():
            if spec["format"].strip() == text.strip():
                return template_id
    return None


def literal_system(text: str) -> str | None:
    """A system line written into the template itself (Vicuna's "A chat between ..."), if any."""
    if "{system_message}" in text or "{prompt}" not in text:
        return None
    before = text.split("{prompt}", 1)[0]
    before = _USER_MARK.sub("", before.rstrip()).strip()
    before = _SYSTEM_MARK.sub("", before).strip()
    if len(before) < 20 or " " not in before or "<|" in before or "{" in before:
        return None
    return before


def system_from_card(text: str, card_text: str) -> str | None:
    """The card's recommended system message: a filled-in copy of the template's system block."""
    literal = literal_system(text)
    if literal:
        return literal
    if "{system_message}" not in text:
        return None
    before, after = text.split("{system_message}", 1)
    prefix = before.rstrip("\n").rsplit("\n", 1)[-1].strip()
    tail = after.split("{prompt}", 1)[0].strip()
    first_end = tail.split("\n", 1)[0].strip()
    if not prefix:
        return None
    haystack = card_text.replace("\\n", "\n")
    ends = [re.escape(first_end)] if first_end else []
    for end in (*ends, '"|\n\n|```|$'):
        pattern = re.compile(re.escape(prefix) + r"[ \t]*\n?(.+?)\s*(?:" + end + ")", re.DOTALL)
        for match in pattern.finditer(haystack):
            found = match[1].strip()
            if (20 <= len(found) <= _MAX_SYSTEM and not re.search(r"[{}\"`]|<\||###", found)
                    and " " in found and not _PLACEHOLDER.search(found)):
                return found
    return None


def _raw(text: str) -> str:
    return "{% raw %}" + text + "{% endraw %}" if text else ""


def _split_turn(between: str) -> tuple[str, str]:
    """Split the text between the system message and the prompt into (end of system, user prefix)."""
    lines = between.split("\n")
    for index in range(len(lines) - 1, 0, -1):
        if lines[index].strip():
            return "\n".join(lines[:index]) + "\n", "\n".join(lines[index:])
    match = _TURN_MARK.search(between)
    if match:
        return between[:match.start()], match[1]
    return between, ""


def template_from_text(template_id: str, name: str, text: str, source: str) -> dict[str, Any]:
    """A catalogue template (spec) from a card's single-turn text with ``{prompt}``."""
    if "{system_message}" in text:
        head, rest = text.split("{system_message}", 1)
        between, after = rest.split("{prompt}", 1)
        end_system, user_prefix = _split_turn(between)
        system_part = _raw(head) + "{{ sys }}" + _raw(end_system)
        separator = end_system
        supports_system = True
    else:
        user_prefix, after = text.split("{prompt}", 1)
        system_part, separator, supports_system = "", "", False
    jinja = (
        "{% if messages and messages[0].role == 'system' %}{% set sys = messages[0].content %}"
        "{% set msgs = messages[1:] %}{% else %}{% set sys = none %}{% set msgs = messages %}{% endif %}"
        + ("{% if sys is not none %}" + system_part + "{% endif %}" if supports_system else "")
        + "{% for m in msgs %}{% if m.role == 'user' %}" + _raw(user_prefix) + "{{ m.content }}" + _raw(after)
        + "{% elif m.role == 'assistant' %}{{ m.content }}" + _raw(separator or "\n") + "{% endif %}{% endfor %}"
    )
    stops = [s for s in (user_prefix.strip(), separator.strip()) if s]
    return {
        "name": name,
        "format": text,
        "jinja": jinja,
        "stop": list(dict.fromkeys([*stops, "</s>"])),
        "supports_system": supports_system,
        "multi_turn": "Made from the model card's single-turn prompt: each exchange repeats the user "
                      "part, and each reply ends with the text that followed the system message.",
        "source": source,
    }


def choose_from_card(
    prompt: CardPrompt | None, card_text: str, model_id: str, repo: str, templates: dict[str, dict[str, Any]],
) -> ChosenTemplate | None:
    """Our template when the card names one, else a new one from its text; None without a prompt."""
    if prompt is None or "{prompt}" not in prompt.text:
        return None
    system = system_from_card(prompt.text, card_text)
    ours = known_template(prompt.name, prompt.text, templates)
    if ours:
        return ChosenTemplate(ours, None, system, "ours")
    text = prompt.text
    literal = literal_system(text)
    if literal and literal in text:
        text = text.replace(literal, "{system_message}", 1)
    label = prompt.name or "the card's prompt"
    spec = template_from_text(f"{model_id}-card", f"{label} (from the model card)", text,
                              f"from the model card of {repo} ('Prompt template: {label}')")
    return ChosenTemplate(f"{model_id}-card", spec, system, "card")


def choose_from_gguf(
    chat_template: str, bos: str | None, eos: str | None, model_id: str, repo: str,
    templates: dict[str, dict[str, Any]],
) -> ChosenTemplate | None:
    """The GGUF file's own chat template: ours when it renders identically, else a new one."""
    probe = [Message("system", "{system_message}"), Message("user", "{prompt}")]
    bos_token, eos_token = bos or "", eos or ""
    mine = PromptTemplate(id="probe", name="probe", jinja=chat_template, origin="imported")  # from the Hub
    try:
        shown = mine.render(probe, bos_token=bos_token, eos_token=eos_token)
        supports_system = "{system_message}" in shown
    except TemplateError:
        try:
            shown = mine.render(probe[1:], bos_token=bos_token, eos_token=eos_token)
            supports_system = False
        except TemplateError:
            return None
    for template_id, spec in templates.items():
        ours = PromptTemplate(id=template_id, name=spec["name"], jinja=spec["jinja"])
        try:
            if ours.render(probe, bos_token=bos_token, eos_token=eos_token) == shown:
                return ChosenTemplate(template_id, None, None, "ours")
        except TemplateError:
            continue
    spec = {
        "name": "Chat template (from the GGUF file)",
        "format": shown,
        "jinja": chat_template,
        "stop": [eos] if eos else [],
        "supports_system": supports_system,
        "multi_turn": "The file's own tokenizer.chat_template, run as it is.",
        "source": f"tokenizer.chat_template in the GGUF file of {repo}",
    }
    return ChosenTemplate(f"{model_id}-gguf", spec, None, "gguf")
