"""GPU offload planning: which layers fit in free VRAM with the KV cache, and what stays in RAM."""

from __future__ import annotations

import bisect
import ctypes
from collections.abc import Sequence
from dataclasses import dataclass, replace

from app.catalog.hardware import nvidia_smi_gpus
from app.engine.gguf_meta import GGUFMetadata

GB = 1e9
DEFAULT_MARGIN = 512 * 2**20
# Bytes per KV cache element for each cache type (q8_0: 34 bytes per 32; q4_0: 18 per 32).
KV_BYTES_PER_ELEMENT = {"f32": 4.0, "f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
# ggml_backend_dev_type: CPU, GPU, ACCEL, IGPU.
_DEVICE_GPU_TYPES = (1, 3)


@dataclass(frozen=True)
class GpuDevice:
    name: str
    description: str
    free_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class GpuSupport:
    """What this llama.cpp build can do on this machine."""

    offload: bool
    devices: tuple[GpuDevice, ...]

    @property
    def free_vram(self) -> int:
        return max((d.free_bytes for d in self.devices), default=0)

    def __str__(self) -> str:
        if not self.offload:
            return "CPU only (this llama.cpp build has no GPU support)"
        if not self.devices:
            return "CPU only (no GPU found)"
        return ", ".join(f"{d.description or d.name}: {d.free_bytes / GB:.1f} GB free" for d in self.devices)


# Backend registries that are not a local GPU: RPC (remote machines) makes llama_supports_gpu_offload() true
# in every build that has it, BLAS only speeds up the CPU.
_NOT_LOCAL_GPU = ("CPU", "RPC", "BLAS")


def local_gpu_backends() -> tuple[str, ...] | None:
    """Names of this build's local GPU backends (CUDA, Metal, Vulkan, ...), or None when ggml cannot say."""
    import llama_cpp

    lib = llama_cpp.llama_cpp._lib
    try:
        count, get, name = lib.ggml_backend_reg_count, lib.ggml_backend_reg_get, lib.ggml_backend_reg_name
    except AttributeError:
        return None
    count.restype = ctypes.c_size_t
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
    names = ((name(get(index)) or b"").decode(errors="replace") for index in range(count()))
    return tuple(n for n in names if n.upper() not in _NOT_LOCAL_GPU)


def build_offloads() -> bool:
    """Whether this llama.cpp build can put layers on a local GPU (RPC alone does not count)."""
    import llama_cpp

    if not llama_cpp.llama_supports_gpu_offload():
        return False
    backends = local_gpu_backends()
    return True if backends is None else bool(backends)


def _ggml_devices() -> list[GpuDevice] | None:
    """GPU devices through ggml's backend device API, or None when the library lacks it."""
    import llama_cpp

    lib = llama_cpp.llama_cpp._lib
    try:
        count = lib.ggml_backend_dev_count
        get = lib.ggml_backend_dev_get
        name = lib.ggml_backend_dev_name
        description = lib.ggml_backend_dev_description
        kind = lib.ggml_backend_dev_type
        memory = lib.ggml_backend_dev_memory
    except AttributeError:
        return None
    count.restype = ctypes.c_size_t
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
    description.restype, description.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
    kind.restype, kind.argtypes = ctypes.c_int, [ctypes.c_void_p]
    size_p = ctypes.POINTER(ctypes.c_size_t)
    memory.restype, memory.argtypes = None, [ctypes.c_void_p, size_p, size_p]
    devices = []
    for index in range(count()):
        device = get(index)
        if kind(device) not in _DEVICE_GPU_TYPES:
            continue
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        memory(device, ctypes.byref(free), ctypes.byref(total))
        devices.append(GpuDevice(
            name=(name(device) or b"").decode(errors="replace"),
            description=(description(device) or b"").decode(errors="replace"),
            free_bytes=free.value, total_bytes=total.value,
        ))
    return devices


def _nvidia_smi_devices() -> list[GpuDevice]:
    return [GpuDevice(f"CUDA{index}", gpu.name, gpu.free_bytes, gpu.total_bytes)
            for index, gpu in enumerate(nvidia_smi_gpus())]


def detect_gpu() -> GpuSupport:
    """Whether llama.cpp can offload here, and each GPU's free memory."""
    if not build_offloads():
        return GpuSupport(False, ())
    devices = _ggml_devices()
    if devices is None:
        devices = _nvidia_smi_devices()
    return GpuSupport(True, tuple(devices))


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

    @property
    def all_on_gpu(self) -> bool:
        return self.n_gpu_layers > self.total_layers

    def __str__(self) -> str:
        if self.split:
            return f"{self.split} · {self.ram_bytes / GB:.1f} GB RAM here"
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
