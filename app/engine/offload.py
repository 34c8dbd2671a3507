"""GPU offload planning: which layers fit in free VRAM with the KV cache, and what stays in RAM."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, replace

# One hardware truth: the engine asks the same device list as the catalogue's fit badges.
from app.catalog.devices import NO_BUILD_SUPPORT, NO_GPU_FOUND, GpuDevice, detect_devices
from app.catalog.devices import build_offloads as build_offloads
from app.catalog.devices import local_gpu_backends as local_gpu_backends
from app.engine.gguf_meta import GGUFMetadata

GB = 1e9
DEFAULT_MARGIN = 512 * 2**20
# Bytes per KV cache element for each cache type (q8_0: 34 bytes per 32; q4_0: 18 per 32).
KV_BYTES_PER_ELEMENT = {"f32": 4.0, "f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}


@dataclass(frozen=True)
class GpuSupport:
    """What this llama.cpp build can do on this machine."""

    offload: bool
    devices: tuple[GpuDevice, ...]
    reason: str = ""  # why no layers go to a GPU (devices.NO_BUILD_SUPPORT, NO_GPU_FOUND)
    unusable: tuple[str, ...] = ()  # GPUs NVML sees that this build cannot use

    @property
    def free_vram(self) -> int:
        return max((d.free_bytes for d in self.devices), default=0)

    @property
    def why_cpu_only(self) -> str:
        """Why no layers go to a local GPU (no GPU support in the build, no GPU found), and what NVML saw."""
        reason = self.reason or (NO_GPU_FOUND if self.offload else NO_BUILD_SUPPORT)
        return reason + (f"; found {', '.join(self.unusable)}" if self.unusable else "")

    def __str__(self) -> str:
        if not self.devices:
            return f"CPU only ({self.why_cpu_only})"
        return ", ".join(f"{d.description or d.name}: {d.free_bytes / GB:.1f} GB free" for d in self.devices)


def detect_gpu() -> GpuSupport:
    """Whether llama.cpp can offload here, and each GPU's free memory: the catalogue's own answer."""
    report = detect_devices()
    return GpuSupport(report.offload, report.devices, report.reason, report.unusable)


@dataclass(frozen=True)
class OffloadPlan:
    """Where a model's weights and KV cache go: ``n_gpu_layers`` as llama.cpp counts them.

    ``n_gpu_layers`` runs 0..total_layers+1: the last N repeating blocks go to the GPU, and
    total_layers+1 also moves the output layer.
    """

    n_gpu_layers: int
    total_layers: int
    vram_bytes: int
    ram_bytes: int
    ctx: int
    kv_bytes: int = 0
    output_on_gpu: bool = False
    # With remote machines: where the layers go, e.g. "40 layers: 12 on this GPU, 28 on studio:50052 (device 0)".
    split: str = ""
    cpu_only: str = ""  # why nothing can go to a GPU here (the catalogue says the same)

    @property
    def all_on_gpu(self) -> bool:
        return self.n_gpu_layers > self.total_layers

    def __str__(self) -> str:
        if self.split:
            return f"{self.split} · {self.ram_bytes / GB:.1f} GB RAM here"
        if self.cpu_only:
            return f"CPU only ({self.cpu_only}) · {self.ram_bytes / GB:.1f} GB RAM"
        layers = min(self.n_gpu_layers, self.total_layers)
        return (f"{layers}/{self.total_layers} layers on GPU · {self.vram_bytes / GB:.1f} GB VRAM · "
                f"{self.ram_bytes / GB:.1f} GB RAM")


def kv_cache_bytes_per_layer(meta: GGUFMetadata, ctx: int, kv_type: str = "f16") -> int:
    """K and V for one layer: ctx × n_head_kv × (head_dim_k + head_dim_v) × bytes per element."""
    per_element = KV_BYTES_PER_ELEMENT[kv_type]
    heads = meta.head_count_kv or meta.head_count or 0
    return int(ctx * heads * (meta.head_dim_k + meta.head_dim_v) * per_element)


def _output_bytes(meta: GGUFMetadata) -> int:
    """The output head; with tied embeddings llama.cpp puts a copy of token_embd there."""
    names = {t.name: t.n_bytes for t in meta.tensors}
    _, output = meta.non_layer_bytes()
    if "output.weight" not in names:
        output += names.get("token_embd.weight", 0)
    return output


def plan_offload(
    meta: GGUFMetadata,
    free_vram: int,
    ctx: int,
    kv_type: str = "f16",
    margin: int = DEFAULT_MARGIN,
    n_gpu_layers: int | None = None,
) -> OffloadPlan:
    """Plan from the file's per-layer tensor bytes; ``n_gpu_layers`` overrides the automatic choice."""
    layers = meta.layer_bytes()
    total = len(layers)
    kv_layer = kv_cache_bytes_per_layer(meta, ctx, kv_type)
    output = _output_bytes(meta)
    if n_gpu_layers is None:
        budget = free_vram - margin
        chosen = 0
        used = 0
        for size in reversed(layers):  # llama.cpp offloads the last layers first
            if used + size + kv_layer > budget:
                break
            used += size + kv_layer
            chosen += 1
        if chosen == total and total and used + output <= budget:
            chosen = total + 1
    else:
        chosen = max(0, min(n_gpu_layers, total + 1))
    on_gpu = layers[total - min(chosen, total):] if chosen else []
    gpu_layers = min(chosen, total)
    output_on_gpu = chosen > total
    vram = sum(on_gpu) + gpu_layers * kv_layer + (output if output_on_gpu else 0)
    weights_in_ram = meta.tensor_bytes - sum(on_gpu) - (meta.non_layer_bytes()[1] if output_on_gpu else 0)
    ram = weights_in_ram + (total - gpu_layers) * kv_layer
    return OffloadPlan(chosen, total, vram, ram, ctx, kv_layer * total, output_on_gpu)


def max_context(meta: GGUFMetadata, free_bytes: int, kv_type: str = "f16",
                margin: int = DEFAULT_MARGIN) -> int:
    """The longest context (a multiple of 256, at most the trained length) whose KV cache fits."""
    trained = meta.context_length or 4096
    per_token = kv_cache_bytes_per_layer(meta, 1, kv_type) * (meta.block_count or 1)
    if per_token <= 0:
        return trained
    fits = (free_bytes - margin) // per_token
    return int(max(256, min(trained, fits // 256 * 256)))


def default_context(meta: GGUFMetadata, available_ram: int, cap: int = 8192, kv_type: str = "f16") -> int:
    """Context length to load with: the model's own, capped at ``cap`` and by free memory."""
    room = available_ram - meta.tensor_bytes
    return min(cap, max_context(meta, room, kv_type))


def memory_advice(plan: OffloadPlan) -> str:
    """What to try after a load failed for memory: fewer GPU layers, or a smaller context."""
    tips = []
    if plan.n_gpu_layers > 0:
        tips.append(f"{max(0, min(plan.n_gpu_layers, plan.total_layers) * 3 // 4)} GPU layers")
    if plan.ctx > 512:
        tips.append(f"a {max(512, plan.ctx // 2)}-token context")
    return "try " + " or ".join(tips) if tips else "close other programs and try again"


# ---- splitting across devices (local GPUs and remote machines) ------------------------------


@dataclass(frozen=True)
class SplitDevice:
    """A device that takes layers: a remote machine's device or a local GPU, with its free memory."""

    label: str
    free_bytes: int


def split_layers(n_gpu_layers: int, total_layers: int, free: Sequence[int]) -> list[int]:
    """Repeating layers per device, as llama.cpp assigns them (llama-model.cpp, load_tensors).

    Devices share the offloaded layers in proportion to their free memory, in order (remote
    servers first, then local GPUs); the first layers not offloaded stay on the CPU.
    """
    counts = [0] * len(free)
    if not free or n_gpu_layers <= 0:
        return counts
    total_free = float(sum(free))
    if total_free <= 0:
        free = [1] * len(free)
        total_free = float(len(free))
    splits: list[float] = []
    running = 0.0
    for value in free:
        running += value
        splits.append(running / total_free)
    gpu_start = max(total_layers + 1 - n_gpu_layers, 0)
    active = min(n_gpu_layers, total_layers + 1)
    for layer in range(total_layers):
        if layer < gpu_start or layer - gpu_start >= active:
            continue
        index = bisect.bisect_right(splits, (layer - gpu_start) / active)
        counts[min(index, len(free) - 1)] += 1
    return counts


def describe_split(n_gpu_layers: int, total_layers: int, devices: Sequence[SplitDevice]) -> str:
    """One line: "40 layers: 12 on this GPU, 28 on studio:50052 (device 0)"; CPU layers last."""
    counts = split_layers(n_gpu_layers, total_layers, [d.free_bytes for d in devices])
    parts = [f"{n} on {d.label}" for n, d in zip(counts, devices, strict=True) if n]
    on_cpu = total_layers - sum(counts)
    if on_cpu:
        parts.append(f"{on_cpu} on this machine's CPU")
    return f"{total_layers} layers: " + ", ".join(parts)


def plan_split(
    meta: GGUFMetadata,
    local_gpus: Sequence[GpuDevice],
    remote: Sequence[SplitDevice],
    ctx: int,
    kv_type: str = "f16",
    margin: int = DEFAULT_MARGIN,
    n_gpu_layers: int | None = None,
) -> OffloadPlan:
    """Plan with remote machines: their free memory counts with the local GPUs', one margin each."""
    local = [SplitDevice("this GPU" if len(local_gpus) == 1 else f"this machine's {g.name}", g.free_bytes)
             for g in local_gpus]
    devices = [*remote, *local]
    budget = sum(d.free_bytes for d in devices) - margin * max(0, len(devices) - 1)
    plan = plan_offload(meta, budget, ctx, kv_type, margin, n_gpu_layers)
    return replace(plan, split=describe_split(plan.n_gpu_layers, plan.total_layers, devices))
