"""Per-model load preferences: validated, saved per resolved file path beside other settings, a bad saved value
named and ignored; plan_load honours them and refuses a context the model or the memory cannot hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.engine.chat_session import plan_load
from app.engine.load_preferences import (
    KEY,
    LoadPreferences,
    PreferenceError,
    load_preferences,
    model_key,
    parse_preferences,
    save_preferences,
)
from app.engine.thread_setting import load_thread_setting, save_thread_setting
from app.errors import HearthError
from app.formats.gguf_meta import read_gguf_metadata


def test_values_are_checked_with_what_is_allowed() -> None:
    assert LoadPreferences().is_auto
    chosen = LoadPreferences(context_length=1024, kv_cache_type="q8_0")
    assert chosen.describe() == "context 1,024 tokens, KV cache q8_0"
    with pytest.raises(PreferenceError, match="context length must be Auto or a whole number from 256"):
        LoadPreferences(context_length=100)
    with pytest.raises(PreferenceError, match="context length"):
        LoadPreferences(context_length=True)  # type: ignore[arg-type]
    with pytest.raises(PreferenceError, match="GPU layers must be Auto or a whole number of at least 0"):
        LoadPreferences(gpu_layers=-1)
    with pytest.raises(PreferenceError, match="KV cache type must be one of f16, q8_0, q4_0, not 'q2'"):
        LoadPreferences(kv_cache_type="q2")  # type: ignore[arg-type]
    with pytest.raises(PreferenceError, match="flash attention must be one of auto, on, off"):
        LoadPreferences(flash_attention="yes")  # type: ignore[arg-type]


def test_saved_per_resolved_path_keeping_other_settings(tmp_path: Path) -> None:
    settings = tmp_path / "config" / "settings.json"
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    link = tmp_path / "link.gguf"
    link.symlink_to(model)
    save_thread_setting(settings, 2)
    chosen = LoadPreferences(context_length=2048, gpu_layers=0, flash_attention="off")
    save_preferences(settings, link, chosen)
    data = json.loads(settings.read_text(encoding="utf-8"))
    assert data == {"threads": 2, KEY: {str(model.resolve()): {"context_length": 2048, "gpu_layers": 0,
                                                              "flash_attention": "off"}}}
    assert load_preferences(settings, model) == (chosen, ())
    assert load_preferences(settings, tmp_path / "other.gguf") == (LoadPreferences(), ())
    save_thread_setting(settings, "auto")  # the thread setting's save keeps the preferences
    assert load_preferences(settings, model)[0] == chosen and load_thread_setting(settings) == "auto"
    save_preferences(settings, model, LoadPreferences())  # all Auto: the entry and the empty section go
    assert KEY not in json.loads(settings.read_text(encoding="utf-8"))


def test_a_bad_saved_value_is_named_and_auto_used(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    model = tmp_path / "m.gguf"
    settings.write_text(json.dumps({KEY: {model_key(model): {"context_length": "lots", "kv_cache_type": "q8_0",
                                                              "flash_attention": "maybe", "future": 1}}}))
    preferences, problems = load_preferences(settings, model)
    assert preferences == LoadPreferences(kv_cache_type="q8_0")  # the good value is kept
    assert problems == (
        "m.gguf: saved context length must be Auto or a whole number from 256 to 16,777,216, not 'lots'; "
        "Auto is used",
        "m.gguf: saved flash attention must be one of auto, on, off, not 'maybe'; Auto is used",
    )
    assert parse_preferences([1, 2])[1] == ("the saved load settings are not a table ([1, 2]); Auto is used",)


def test_an_unreadable_file_never_stops_a_load_and_is_never_overwritten(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text("{not json", encoding="utf-8")
    preferences, problems = load_preferences(settings, tmp_path / "m.gguf")
    assert preferences.is_auto and problems[0].startswith(f"cannot read the settings file {settings}")
    with pytest.raises(HearthError, match="cannot read the settings file"):
        save_preferences(settings, tmp_path / "m.gguf", LoadPreferences(context_length=512))
    assert settings.read_text(encoding="utf-8") == "{not json"
    settings.write_text(json.dumps({KEY: "oops"}))
    assert load_preferences(settings, tmp_path / "m.gguf")[0].is_auto
    with pytest.raises(HearthError, match="is not a table"):
        save_preferences(settings, tmp_path / "m.gguf", LoadPreferences(context_length=512))


def test_plan_load_uses_them_and_says_what_the_model_or_memory_cannot_hold(smollm2: Path) -> None:
    meta = read_gguf_metadata(smollm2)
    chosen = LoadPreferences(context_length=1024, gpu_layers=0, kv_cache_type="q8_0", flash_attention="on")
    settings, plan = plan_load(smollm2, meta, available_ram=8 << 30, free_vram=0, **chosen.plan_arguments())
    assert (settings.n_ctx, settings.n_gpu_layers, settings.kv_cache_type, settings.flash_attention) == (
        1024, 0, "q8_0", "on")
    assert plan.ctx == 1024
    with pytest.raises(HearthError, match=r"a context of 16,384 tokens is longer than SmolLM2.* was trained for "
                                          r"\(8,192 tokens\): choose at most 8,192"):
        plan_load(smollm2, meta, ctx=16384, available_ram=8 << 30, free_vram=0)
    tight = meta.tensor_bytes + (512 << 20) + 200 * 23040  # room beside the model for ~200 tokens of f16 KV cache
    with pytest.raises(HearthError, match=r"a context of 8,192 tokens needs 0\.2 GB for its KV cache.*"
                                          r"close other programs, or a q8_0 KV cache"):
        plan_load(smollm2, meta, ctx=8192, available_ram=tight, free_vram=0)
    roomy = meta.tensor_bytes + (512 << 20) + 3000 * 23040
    with pytest.raises(HearthError, match="choose at most 2,816 tokens, or a q8_0 KV cache"):
        plan_load(smollm2, meta, ctx=8192, available_ram=roomy, free_vram=0)
    assert plan_load(smollm2, meta, ctx=2048, available_ram=roomy, free_vram=0)[0].n_ctx == 2048
