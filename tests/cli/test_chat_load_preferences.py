"""``hearth chat`` loads a file as the window would: with the load settings saved for it, each flag over them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.engine.load_preferences import KEY, LoadPreferences, model_key, save_preferences
from app.paths import app_dirs
from tests.cli.test_chat_cmd import hearth

ASK = ("-p", "Hi", "--max-tokens", "2", "--temp", "0", "--no-save", "--verbose", "--threads", "1")


@pytest.mark.slow
def test_saved_preferences_are_used_and_flags_override_them(smollm2: Path) -> None:
    save_preferences(app_dirs().settings_file, smollm2, LoadPreferences(context_length=1024, kv_cache_type="q8_0"))
    saved = hearth("chat", str(smollm2), *ASK)
    assert saved.returncode == 0, saved.stderr
    assert "Saved load settings for this file: context 1,024 tokens, KV cache q8_0" in saved.stderr
    assert "; context 1024; KV cache q8_0; flash attention auto;" in saved.stderr
    flagged = hearth("chat", str(smollm2), *ASK, "--ctx", "512", "--kv-cache", "f16", "--flash-attn", "off")
    assert flagged.returncode == 0, flagged.stderr
    assert "; context 512; KV cache f16; flash attention off;" in flagged.stderr
    auto = hearth("chat", str(smollm2), *ASK, "--ctx", "auto")  # auto: the planner's choice, over the saved 1024
    assert auto.returncode == 0, auto.stderr
    assert "; context 8192; KV cache q8_0;" in auto.stderr


def test_a_bad_saved_value_is_a_warning_and_a_too_long_context_an_error(smollm2: Path) -> None:
    settings = app_dirs().settings_file
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({KEY: {model_key(smollm2): {"context_length": 99999999}}}), encoding="utf-8")
    result = hearth("chat", str(smollm2), "-p", "Hi", "--no-save", "--ctx", "16384")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"hearth: warning: {smollm2.name}: saved context length must be Auto or a whole")
    assert lines[1] == (f"hearth: error: a context of 16,384 tokens is longer than {smollm2.name} was trained for "
                        "(8,192 tokens): choose at most 8,192")
