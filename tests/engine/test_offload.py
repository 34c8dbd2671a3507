"""The offload planner's arithmetic on SmolLM2's real metadata, with described free VRAM."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine.offload import (
    DEFAULT_MARGIN,
    detect_gpu,
    kv_cache_bytes_per_layer,
    max_context,
    memory_advice,
    plan_offload,
)
from app.formats.gguf_meta import GGUFMetadata, read_gguf_metadata

MiB = 2**20
# SmolLM2-135M Q4_1: 30 blocks of 2,216,448 bytes; token_embd (Q8_0) 30,081,024 bytes and tied
# to the output head; output_norm 2,304 bytes; 3 KV heads of 64 dimensions.
LAYER = 2_216_448
EMBED = 30_081_024
KV_PER_LAYER_2K = 2 * 2048 * 3 * 64 * 2  # K and V, f16: 1,572,864 bytes


@pytest.fixture(scope="module")
def meta(smollm2: Path) -> GGUFMetadata:
    return read_gguf_metadata(smollm2)


def test_per_layer_figures(meta: GGUFMetadata) -> None:
    assert meta.layer_bytes() == [LAYER] * 30
    assert meta.non_layer_bytes() == (EMBED, 2_304)
    assert kv_cache_bytes_per_layer(meta, 2048) == KV_PER_LAYER_2K
    assert kv_cache_bytes_per_layer(meta, 2048, "q8_0") == 2048 * 3 * 128 * 34 // 32


def test_no_vram_keeps_everything_in_ram(meta: GGUFMetadata) -> None:
    plan = plan_offload(meta, free_vram=0, ctx=2048)
    assert plan.n_gpu_layers == 0 and plan.vram_bytes == 0
    assert plan.ram_bytes == meta.tensor_bytes + 30 * KV_PER_LAYER_2K
    assert str(plan) == "0/30 layers on GPU · 0.0 GB VRAM · 0.1 GB RAM"


def test_partial_offload_fills_the_budget_from_the_last_layer(meta: GGUFMetadata) -> None:
    # 560 MiB free, 512 MiB margin: 48 MiB = 50,331,648 bytes for layers of 3,789,312 bytes each.
    plan = plan_offload(meta, free_vram=560 * MiB, ctx=2048)
    per_layer = LAYER + KV_PER_LAYER_2K
    assert plan.n_gpu_layers == (560 * MiB - DEFAULT_MARGIN) // per_layer == 13
    assert plan.vram_bytes == 13 * per_layer
    assert plan.ram_bytes == meta.tensor_bytes - 13 * LAYER + 17 * KV_PER_LAYER_2K
    assert str(plan).startswith("13/30 layers on GPU")


def test_everything_fits_including_the_tied_output_head(meta: GGUFMetadata) -> None:
    plan = plan_offload(meta, free_vram=2 * 2**30, ctx=2048)
    assert plan.n_gpu_layers == 31 and plan.output_on_gpu and plan.all_on_gpu
    # The output head on the GPU is a copy of the tied token embedding plus output_norm.
    assert plan.vram_bytes == 30 * (LAYER + KV_PER_LAYER_2K) + EMBED + 2_304
    assert plan.ram_bytes == EMBED  # the input embedding always stays on the CPU
    assert str(plan) == "30/30 layers on GPU · 0.1 GB VRAM · 0.0 GB RAM"


def test_user_override_and_bigger_context(meta: GGUFMetadata) -> None:
    plan = plan_offload(meta, free_vram=0, ctx=8192, n_gpu_layers=10)
    kv_8k = 4 * KV_PER_LAYER_2K
    assert plan.n_gpu_layers == 10
    assert plan.vram_bytes == 10 * (LAYER + kv_8k)
    assert plan_offload(meta, 0, 2048, n_gpu_layers=99).n_gpu_layers == 31
    assert "GPU layers" in memory_advice(plan) and "4096-token context" in memory_advice(plan)


def test_context_is_capped_by_memory(meta: GGUFMetadata) -> None:
    per_token = 30 * 3 * 128 * 2  # 23,040 bytes of KV cache per token
    assert max_context(meta, DEFAULT_MARGIN + 1000 * per_token) == 768
    assert max_context(meta, 64 * 2**30) == 8192  # never past the trained length


def test_cpu_build_reports_cpu_only() -> None:
    support = detect_gpu()
    if support.offload:
        pytest.skip("this llama.cpp build can offload")
    assert str(support).startswith("CPU only")
    assert support.free_vram == 0
