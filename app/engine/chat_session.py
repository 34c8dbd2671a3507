"""A conversation with a loaded model: the seam the chat store and the CLI share (history in, tokens out)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from app.catalog.model import Model
from app.engine.chat_format import ChatFormat
from app.engine.client import EngineClient
from app.engine.gguf_meta import GGUFMetadata
from app.engine.offload import OffloadPlan, default_context, detect_gpu, plan_offload
from app.engine.protocol import GenerationStats, LoadSettings, SamplingSettings
from app.engine.templates import Message
from app.errors import HearthError

_SAMPLING_KEYS = {f.name for f in fields(SamplingSettings)}


def sampling_for(model: Model | None, **overrides: Any) -> SamplingSettings:
    """The catalogue's per-model sampling defaults, then any non-None ``overrides``."""
    values: dict[str, Any] = {}
    if model is not None:
        values.update({k: v for k, v in model.sampling.items() if k in _SAMPLING_KEYS})
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - _SAMPLING_KEYS
    if unknown:
        raise HearthError(f"unknown sampling settings: {', '.join(sorted(unknown))}")
    return SamplingSettings(**values)


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
    context = ctx or default_context(meta, ram)
    if context < 16:
        raise HearthError(f"a context of {context} tokens is too small to chat")
    if rpc:
        from app.engine.rpc_plan import plan_with_remotes

        endpoints, plan = plan_with_remotes(meta, rpc, context, settings.get("kv_cache_type", "f16"),
                                            gpu_layers)
        return LoadSettings(str(path), n_ctx=context, n_gpu_layers=plan.n_gpu_layers, rpc=endpoints,
                            **settings), plan
    cpu_only = ""
    if free_vram is None:
        support = detect_gpu()
        free_vram = support.free_vram if support.offload else 0
        if not support.devices and gpu_layers is None:
            cpu_only = support.why_cpu_only
    plan = plan_offload(meta, free_vram, context, settings.get("kv_cache_type", "f16"),
                        n_gpu_layers=gpu_layers)
    if cpu_only:
        plan = replace(plan, cpu_only=cpu_only)
    return LoadSettings(str(path), n_ctx=context, n_gpu_layers=plan.n_gpu_layers, **settings), plan


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

