"""The one answer to "which GPUs can Hearth use here": ggml's device list, NVML only where ggml cannot say.

The catalogue's fit badges and the engine's offload plan both read :func:`detect_devices`, so they
cannot disagree. Call it off the GUI thread: the first call loads llama.cpp's library. The GUI asks in a
child process (:func:`isolate_queries`): its own process then never loads llama.cpp or holds a GPU context.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

NO_BUILD_SUPPORT = "this llama.cpp build has no GPU support"
NO_GPU_FOUND = "no GPU found"
NO_LLAMA = "llama.cpp could not be loaded"

# ggml_backend_dev_type (ggml/include/ggml-backend.h): CPU, GPU, IGPU, ACCEL, META.
DEVICE_CPU, DEVICE_GPU, DEVICE_IGPU, DEVICE_ACCEL = 0, 1, 2, 3
_LOCAL_GPU_TYPES = (DEVICE_GPU, DEVICE_IGPU)
# Backend registries that are not a local GPU: RPC (remote machines) makes llama_supports_gpu_offload() true
# in every build that has it, BLAS only speeds up the CPU.
_NOT_LOCAL_GPU = ("CPU", "RPC", "BLAS")


@dataclass(frozen=True)
class GpuDevice:
    """A local GPU as ggml (or NVML) reports it; ``backend`` is the ggml registry (CUDA, Metal, Vulkan, ...)."""

    name: str
    description: str
    free_bytes: int
    total_bytes: int
    backend: str = ""
    integrated: bool = False


@dataclass(frozen=True)
class RawDevice:
    """One entry of ggml's device list, unfiltered."""

    name: str
    description: str
    kind: int
    backend: str
    free_bytes: int
    total_bytes: int

    @property
    def is_remote(self) -> bool:
        """A device of a registered RPC server (another machine)."""
        return self.backend.upper() == "RPC"


@dataclass(frozen=True)
class GgmlView:
    """What the loaded llama.cpp library says; ``None`` fields where this version has no such API."""

    supports_offload: bool
    backends: tuple[str, ...] | None
    devices: tuple[RawDevice, ...] | None


@dataclass(frozen=True)
class DeviceReport:
    """Whether this build offloads to a local GPU, the usable GPUs, and why there are none."""

    offload: bool
    devices: tuple[GpuDevice, ...]
    source: str  # "ggml", "nvml" or "" (nothing usable)
    reason: str = ""  # why no VRAM counts; "" when there are usable GPUs
    unusable: tuple[str, ...] = ()  # GPUs NVML sees that this build cannot use

    @property
    def vram_free(self) -> int:
        return sum(d.free_bytes for d in self.devices)

    @property
    def vram_total(self) -> int:
        return sum(d.total_bytes for d in self.devices)

    def explain(self) -> str:
        """``"CPU only (this llama.cpp build has no GPU support; found NVIDIA ...)"``, or the GPUs."""
        if self.devices:
            return ", ".join(f"{d.description or d.name}: {d.free_bytes / 1e9:.1f} GB free" for d in self.devices)
        found = f"; found {', '.join(self.unusable)}" if self.unusable else ""
        return f"CPU only ({self.reason}{found})"


def _decode(value: bytes | None) -> str:
    return (value or b"").decode(errors="replace")


def _bind(lib: Any, name: str, restype: Any, argtypes: list[Any]) -> Any:
    function = getattr(lib, name)
    function.restype, function.argtypes = restype, argtypes
    return function


class GgmlRegistry:
    """ggml's backend registry (ggml-backend.h) in the loaded llama.cpp library: the one place Hearth walks it.

    :func:`ggml_view` reads it for the catalogue and the offload plan, ``app.engine.rpc_native`` for the
    device handles a split load and ``hearth rpc-server`` need. ``backends``/``devices`` are False where
    this library version has no such API.
    """

    def __init__(self, lib: Any) -> None:
        vp, sz, cp = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p
        self.backends = self.devices = False
        try:
            self._reg_count = _bind(lib, "ggml_backend_reg_count", sz, [])
            self._reg_get = _bind(lib, "ggml_backend_reg_get", vp, [sz])
            self._reg_name = _bind(lib, "ggml_backend_reg_name", cp, [vp])
            self._register = _bind(lib, "ggml_backend_register", None, [vp])
        except AttributeError:
            return
        self.backends = True
        try:
            self._count = _bind(lib, "ggml_backend_dev_count", sz, [])
            self._get = _bind(lib, "ggml_backend_dev_get", vp, [sz])
            self._name = _bind(lib, "ggml_backend_dev_name", cp, [vp])
            self._description = _bind(lib, "ggml_backend_dev_description", cp, [vp])
            self._kind = _bind(lib, "ggml_backend_dev_type", ctypes.c_int, [vp])
            self._backend_reg = _bind(lib, "ggml_backend_dev_backend_reg", vp, [vp])
            size_p = ctypes.POINTER(sz)
            self._memory = _bind(lib, "ggml_backend_dev_memory", None, [vp, size_p, size_p])
        except AttributeError:
            return
        self.devices = True

    def backend_names(self) -> tuple[str, ...]:
        return tuple(_decode(self._reg_name(self._reg_get(i))) for i in range(self._reg_count()))

    def register(self, reg: int) -> None:
        """Add a backend registry (an RPC server's, from ``ggml_backend_rpc_add_server``)."""
        self._register(reg)

    def handles(self) -> list[int]:
        """Every device's ``ggml_backend_dev_t``, in ggml's order (registered RPC servers included)."""
        return [int(self._get(i)) for i in range(self._count())]

    def kind(self, handle: int) -> int:
        return int(self._kind(handle))

    def device(self, handle: int) -> RawDevice:
        """One device; a remote (RPC) device's memory is left 0: asking it is a network round trip."""
        backend = _decode(self._reg_name(self._backend_reg(handle)))
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        if backend.upper() != "RPC":
            self._memory(handle, ctypes.byref(free), ctypes.byref(total))
        return RawDevice(_decode(self._name(handle)), _decode(self._description(handle)), self.kind(handle),
                         backend, free.value, total.value)


@lru_cache(maxsize=1)
def ggml_registry() -> GgmlRegistry | None:
    """The registry of the llama.cpp library this Hearth runs with; ``None`` when it cannot be loaded."""
    try:
        import llama_cpp
    except (ImportError, OSError):
        return None
    return GgmlRegistry(llama_cpp.llama_cpp._lib)


def ggml_view() -> GgmlView | None:
    """Ask the llama.cpp library this Hearth runs with; ``None`` when it cannot be loaded."""
    registry = ggml_registry()
    if registry is None:
        return None
    import llama_cpp

    supports = bool(llama_cpp.llama_supports_gpu_offload())
    if not registry.backends:
        return GgmlView(supports, None, None)
    backends = registry.backend_names()
    if not registry.devices:
        return GgmlView(supports, backends, None)
    return GgmlView(supports, backends, tuple(registry.device(h) for h in registry.handles()))


def nvml_gpus() -> tuple[GpuDevice, ...] | None:
    """NVIDIA GPUs through NVML (nvidia-ml-py); ``None`` when there is no NVIDIA driver to ask."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # pynvml.NVMLError and OSError subclasses: no driver, no library
        return None
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(GpuDevice(f"CUDA{index}", name, int(memory.free), int(memory.total), "CUDA"))
        return tuple(gpus)
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def local_backends(view: GgmlView) -> tuple[str, ...] | None:
    """This build's local GPU backends (CUDA, Metal, Vulkan, ...), or None when ggml cannot say."""
    if view.backends is None:
        return None
    return tuple(n for n in view.backends if n.upper() not in _NOT_LOCAL_GPU)


def view_offloads(view: GgmlView) -> bool:
    """Whether the build can put layers on a local GPU (an RPC-only build cannot)."""
    if not view.supports_offload:
        return False
    backends = local_backends(view)
    return True if backends is None else bool(backends)


def local_gpu_backends() -> tuple[str, ...] | None:
    """Names of this build's local GPU backends (CUDA, Metal, Vulkan, ...), or None when ggml cannot say."""
    view = ggml_view()
    return local_backends(view) if view is not None else None


def build_offloads() -> bool:
    """Whether this llama.cpp build can put layers on a local GPU (RPC alone does not count)."""
    view = ggml_view()
    return view is not None and view_offloads(view)


def report_from(view: GgmlView | None, nvml: tuple[GpuDevice, ...] | None) -> DeviceReport:
    """Combine ggml's answer with NVML's (used only for what ggml cannot say)."""
    seen = tuple(g.description for g in nvml or ())
    if view is None:
        return DeviceReport(False, (), "", NO_LLAMA, seen)
    if not view_offloads(view):
        return DeviceReport(False, (), "", NO_BUILD_SUPPORT, seen)
    if view.devices is None:  # an older library without the device API: NVML is the only witness
        gpus = nvml or ()
        return DeviceReport(True, gpus, "nvml" if gpus else "", "" if gpus else NO_GPU_FOUND)
    gpus = tuple(
        GpuDevice(d.name, d.description, d.free_bytes, d.total_bytes, d.backend, d.kind == DEVICE_IGPU)
        for d in view.devices
        if d.kind in _LOCAL_GPU_TYPES and d.backend.upper() not in _NOT_LOCAL_GPU
    )
    if gpus:
        return DeviceReport(True, gpus, "ggml")
    return DeviceReport(True, (), "", NO_GPU_FOUND, seen)


def detect_devices() -> DeviceReport:
    """This machine's usable GPUs as this llama.cpp build sees them (slow the first time: off the GUI thread)."""
    if _isolated:
        report = detect_devices_in_child()
        if report is not None:
            return report
    return _detect_here()


def _detect_here() -> DeviceReport:
    view = ggml_view()
    needs_nvml = view is None or not view_offloads(view) or view.devices is None or not any(
        d.kind in _LOCAL_GPU_TYPES for d in view.devices)
    return report_from(view, nvml_gpus() if needs_nvml else None)


# ---- asking in a child process (the GUI) --------------------------------------------------------

_isolated = False
PROBE_TIMEOUT_S = 60.0


def isolate_queries(enabled: bool = True) -> None:
    """Make :func:`detect_devices` ask a child process (the GUI: no llama.cpp, no GPU context in it)."""
    global _isolated
    _isolated = enabled


def probe_command() -> list[str]:
    """This Python on this module; the bundled app answers ``--device-probe`` (app/__main__.py)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--device-probe"]
    return [sys.executable, "-m", "app.catalog.devices"]


def report_to_json(report: DeviceReport) -> str:
    return json.dumps(asdict(report))


def report_from_json(text: str) -> DeviceReport:
    data = json.loads(text)
    gpus = tuple(GpuDevice(**d) for d in data["devices"])
    return DeviceReport(bool(data["offload"]), gpus, str(data["source"]), str(data["reason"]),
                        tuple(data["unusable"]))


def detect_devices_in_child() -> DeviceReport | None:
    """:func:`detect_devices` in a child process; None when the child fails (the caller asks in-process)."""
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run(probe_command(), capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                              env=env, check=True, stdin=subprocess.DEVNULL)
        return report_from_json(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError, IndexError):
        return None


def main() -> int:
    """Print this machine's :class:`DeviceReport` as one JSON line (the child side of the GUI's question)."""
    print(report_to_json(_detect_here()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
