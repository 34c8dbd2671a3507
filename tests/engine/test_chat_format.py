"""Template resolution: catalogue first, then the file's own (sandboxed), then a labelled fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.catalog import load_catalog
from app.catalog.starter import starter_path, starter_variant
from app.engine.chat_format import ModelNotFoundError, resolve_chat_format
from app.paths import app_dirs
from app.templates.prompt import Message, TemplateError
from tests.engine.tiny_gguf import write_tiny_gguf

HOSTILE_TEMPLATES = {
    "class-walk": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "globals": "{{ raise_exception.__globals__['os'].system('touch {marker}') }}",
    "cycler": "{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}",
    "joiner": "{{ joiner.__init__.__globals__['os'].system('touch {marker}') }}",
    "self": "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.system('touch {marker}') }}",
}


def test_catalogue_model_by_id_uses_catalogue_template_and_system_message() -> None:
    fmt = resolve_chat_format("stablebeluga2-70b", load_catalog())
    template, system, stop, label = fmt
    assert template.id == "orca-hashes"
    assert system is not None and system.startswith("You are Stable Beluga")
    assert "### User:" in stop
    assert label == "Orca-Hashes (from the catalogue)"
    assert fmt.source == "catalogue"


def test_file_in_models_folder_matches_its_catalogue_variant(smollm2: Path) -> None:
    catalog = load_catalog()
    starter = catalog.starter()
    assert starter is not None
    dest = starter_path(app_dirs().models, starter_variant(starter))
    dest.parent.mkdir(parents=True)
    dest.symlink_to(smollm2)
    fmt = resolve_chat_format(dest, catalog)
    assert fmt.source == "catalogue" and fmt.model is starter
    assert fmt.template.id == "chatml"
    # The GGUF's own template would have added SmolLM's system line; the catalogue's does not.
    assert fmt.render([Message("user", "hi")]) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_unknown_gguf_with_its_own_template_uses_it(tmp_path: Path) -> None:
    template = "{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}[assistant]"
    path = write_tiny_gguf(tmp_path / "own.gguf", chat_template=template)
    fmt = resolve_chat_format(path, load_catalog())
    assert fmt.source == "gguf"
    assert fmt.label == "the model file's own chat template"
    assert fmt.render([Message("user", "hi")]) == "[user]hi</s>[assistant]"
    assert fmt.stop == ("</s>",)


def test_gguf_without_template_falls_back_to_labelled_chatml(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "bare.gguf")
    fmt = resolve_chat_format(path, load_catalog())
    assert fmt.source == "fallback"
    assert fmt.template.id == "chatml"
    assert "a guess" in fmt.label and "change it" in fmt.label
    assert fmt.system_message is None
    assert fmt.render([Message("user", "hi")]).endswith("<|im_start|>assistant\n")
    chosen = resolve_chat_format(path, load_catalog(), template_override="orca-hashes")
    assert chosen.source == "chosen" and chosen.template.id == "orca-hashes"
    assert chosen.render([Message("user", "hi")]) == "### User:\nhi\n\n### Assistant:\n"


@pytest.mark.parametrize("name", sorted(HOSTILE_TEMPLATES))
def test_hostile_template_executes_nothing_and_is_reported(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "pwned"
    source = HOSTILE_TEMPLATES[name].replace("{marker}", str(marker))
    path = write_tiny_gguf(tmp_path / "evil.gguf", chat_template=source, name="Evil Model")
    fmt = resolve_chat_format(path, load_catalog())
    with pytest.raises(TemplateError) as caught:
        fmt.render([Message("user", "hi")])
    message = str(caught.value)
    assert "Evil Model" in message
    assert "unsafe" in message or "failed to render" in message
    assert not marker.exists()


def test_template_that_fails_to_compile_names_the_model(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "broken.gguf", chat_template="{% for m in messages %}", name="Broken")
    with pytest.raises(TemplateError, match="Broken") as caught:
        resolve_chat_format(path, load_catalog())
    assert "not valid Jinja" in str(caught.value)


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ModelNotFoundError, match=r"neither a \.gguf file nor a catalogue model"):
        resolve_chat_format("no-such-model", load_catalog())
