"""Sampling defaults from the catalogue, load planning, and the history-in, tokens-out seam."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.catalog import load_catalog
from app.engine.chat_format import resolve_chat_format
from app.engine.chat_session import ChatSession, plan_load, sampling_for
from app.engine.client import EngineClient
from app.engine.protocol import LoadSettings
from app.errors import HearthError
from app.formats.gguf_meta import read_gguf_metadata
from app.templates.prompt import Message
from tests.engine.tiny_gguf import write_tiny_gguf


def test_sampling_defaults_come_from_the_catalogue_then_overrides() -> None:
    model = load_catalog().model("smollm2-135m-instruct")
    sampling = sampling_for(model)
    assert (sampling.temperature, sampling.top_k, sampling.top_p) == (0.2, 40, 0.9)
    assert (sampling.min_p, sampling.repeat_penalty, sampling.max_tokens) == (0.05, 1.1, 512)
    chosen = sampling_for(model, temperature=0.0, seed=7, max_tokens=None)
    assert (chosen.temperature, chosen.seed, chosen.max_tokens) == (0.0, 7, 512)
    with pytest.raises(HearthError, match="unknown sampling"):
        sampling_for(None, warmth=3)


def test_plan_load_caps_context_by_memory_and_plans_layers(smollm2: Path) -> None:
    meta = read_gguf_metadata(smollm2)
    settings, plan = plan_load(smollm2, meta, available_ram=8 * 2**30, free_vram=0)
    assert settings.n_ctx == 8192 and settings.n_gpu_layers == 0
    tight, _ = plan_load(smollm2, meta, available_ram=meta.tensor_bytes + 600 * 2**20, free_vram=0)
    assert tight.n_ctx == 3840  # (600 MiB - 512 MiB margin) / 23,040 bytes a token, in 256s
    offloaded, plan = plan_load(smollm2, meta, ctx=2048, available_ram=8 * 2**30, free_vram=2**30)
    assert offloaded.n_gpu_layers == plan.n_gpu_layers == 31
    forced, _ = plan_load(smollm2, meta, gpu_layers=5, ctx=1024, free_vram=0, n_threads=1)
    assert (forced.n_gpu_layers, forced.n_ctx, forced.n_threads) == (5, 1024, 1)


@pytest.mark.slow
def test_session_renders_history_and_streams(tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "tiny.gguf")
    fmt = resolve_chat_format(model, load_catalog())
    with EngineClient() as client:
        client.load_model(LoadSettings(str(model), n_ctx=512, n_threads=2))
        session = ChatSession(client, fmt, sampling_for(None, temperature=0, max_tokens=6))
        history = [Message("user", "hello")]
        assert session.prompt_for(history) == "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"
        reply = "".join(session.reply(history))
        assert session.last_stats is not None
        assert session.last_stats.generated_tokens >= 1
        assert session.last_stats.prompt_tokens > 10
        assert isinstance(reply, str)
