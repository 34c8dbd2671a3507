"""A conversation with a loaded model: the seam the chat store and the CLI share (history in, tokens out)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.catalog.model import Model
from app.engine.chat_format import ChatFormat
from app.engine.client import EngineClient
from app.engine.offload import (
    DEFAULT_MARGIN,
    GB,
    OffloadPlan,
    default_context,
    detect_gpu,
    kv_cache_bytes_per_layer,
    plan_offload,
)
from app.engine.protocol import GenerationStats, LoadSettings, SamplingSettings
from app.engine.sampling import SAMPLING_KEYS, merge_sampling
from app.errors import HearthError
from app.formats.gguf_meta import GGUFMetadata
from app.templates.prompt import Message


def sampling_for(model: Model | None, **overrides: Any) -> SamplingSettings:
    """The catalogue's per-model sampling defaults, then any non-None ``overrides``.

    A bad value raises SamplingError naming it (see :mod:`app.engine.sampling`).
    """
    defaults = {k: v for k, v in model.sampling.items() if k in SAMPLING_KEYS} if model is not None else {}
    return merge_sampling(defaults, overrides).or_raise()


def plan_load(
    path: Path,
    meta: GGUFMetadata,
    *,
    gpu_layers: int | None = None,
    ctx: int | None = None,
    available_ram: int | None = None,
    free_vram: int | None = None,
    rpc: Sequence[str] = (),
    **settings: Any,
) -> tuple[LoadSettings, OffloadPlan]:
    """Settings to load ``path`` with: context from the model capped by memory, GPU layers planned.

    ``rpc``: remote machines (``hearth rpc-server``) whose free memory takes layers too.
    """
    import psutil

    ram = available_ram if available_ram is not None else psutil.virtual_memory().available
    kv_type = settings.get("kv_cache_type") or "f16"
    context = ctx or default_context(meta, ram, kv_type=kv_type)
    if context < 16:
        raise HearthError(f"a context of {context} tokens is too small to chat")
    trained = meta.context_length
    if ctx and trained and ctx > trained:
        raise HearthError(f"a context of {ctx:,} tokens is longer than {path.name} was trained for "
                          f"({trained:,} tokens): choose at most {trained:,}")
    if rpc:
        from app.engine.rpc_plan import plan_with_remotes

        endpoints, plan = plan_with_remotes(meta, rpc, context, kv_type, gpu_layers)
        return LoadSettings(str(path), n_ctx=context, n_gpu_layers=plan.n_gpu_layers, rpc=endpoints,
                            **settings), plan
    cpu_only = ""
    if free_vram is None:
        support = detect_gpu()
        free_vram = support.free_vram if support.offload else 0
        if not support.devices and gpu_layers is None:
            cpu_only = support.why_cpu_only
    plan = plan_offload(meta, free_vram, context, kv_type, n_gpu_layers=gpu_layers)
    if cpu_only:
        plan = replace(plan, cpu_only=cpu_only)
    if ctx:
        check_memory(plan, meta, ram, kv_type)
    return LoadSettings(str(path), n_ctx=context, n_gpu_layers=plan.n_gpu_layers, **settings), plan


def check_memory(plan: OffloadPlan, meta: GGUFMetadata, available_ram: int, kv_type: str) -> None:
    """A context the user chose whose KV cache cannot fit in free memory: say so, and what would fit."""
    if plan.ram_bytes + DEFAULT_MARGIN <= available_ram:
        return
    layers_here = plan.total_layers - min(plan.n_gpu_layers, plan.total_layers)
    per_token = kv_cache_bytes_per_layer(meta, 1, kv_type) * layers_here
    weights = plan.ram_bytes - per_token * plan.ctx
    room = available_ram - DEFAULT_MARGIN - weights
    fits = room // per_token // 256 * 256 if per_token > 0 else 0
    advice = f"choose at most {fits:,} tokens" if fits >= 256 else "close other programs"
    if kv_type == "f16":
        advice += ", or a q8_0 KV cache"
    raise HearthError(f"a context of {plan.ctx:,} tokens needs {per_token * plan.ctx / GB:.1f} GB for its KV cache, "
                      f"more than the {max(0, available_ram - weights) / GB:.1f} GB of memory free beside the "
                      f"model: {advice}")


@dataclass
class ChatSession:
    """Replies for one chat: render the history with the model's format, stream the answer."""

    client: EngineClient
    chat_format: ChatFormat
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    chat_id: str = "default"
    remedy: str | None = None  # "fold_system" / "merge_turns" for a template that refuses the history

    def prompt_for(self, history: Sequence[Message]) -> str:
        return self.chat_format.render(history, remedy=self.remedy)

    def reply(self, history: Sequence[Message], **sampling: Any) -> Iterator[str]:
        """Yield the assistant's reply to ``history`` as it streams (close early to stop it)."""
        settings = replace(self.sampling, **sampling) if sampling else self.sampling
        yield from self.client.stream(self.prompt_for(history), self.chat_format.stop, settings,
                                      self.chat_id)

    @property
    def last_stats(self) -> GenerationStats | None:
        return self.client.last_stats

