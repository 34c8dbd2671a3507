"""ctypes bindings for ggml's RPC backend (ggml-rpc.h): register remote servers, serve this machine."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.catalog.devices import DEVICE_CPU, DEVICE_GPU, DEVICE_IGPU, GgmlRegistry, RawDevice, ggml_registry
from app.engine.offload import SplitDevice
from app.engine.rpc import RemoteMachine, RpcEndpoint, RpcError, probe

_LIB_NAMES = {"win32": "ggml-rpc.dll", "darwin": "libggml-rpc.dylib"}


def _lib_dir() -> Path:
    import llama_cpp

    return Path(llama_cpp.__file__).parent / "lib"


def rpc_library_path() -> Path | None:
    """libggml-rpc next to llama-cpp-python's libllama, when the build has the RPC backend."""
    name = _LIB_NAMES.get(sys.platform, "libggml-rpc.so")
    path = _lib_dir() / name
    return path if path.exists() else None


class RpcLibrary:
    """ggml-rpc.h's functions; devices come from ggml's registry (``app.catalog.devices``), as everywhere."""

    def __init__(self, rpc_path: Path, registry: GgmlRegistry) -> None:
        self.rpc = ctypes.CDLL(str(rpc_path))
        self.registry = registry
        vp, cp, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t

        def bind(name: str, restype: object, argtypes: list[object]) -> Any:
            fn = getattr(self.rpc, name)
            fn.restype, fn.argtypes = restype, argtypes
            return fn

        # ggml_backend_reg_t ggml_backend_rpc_add_server(const char * endpoint);
        self.add_server = bind("ggml_backend_rpc_add_server", vp, [cp])
        # void ggml_backend_rpc_start_server(const char * endpoint, const char * cache_dir,
        #     size_t n_threads, size_t n_devices, ggml_backend_dev_t * devices);
        self.start_server = bind("ggml_backend_rpc_start_server", None, [cp, cp, sz, sz, ctypes.POINTER(vp)])

    def devices(self) -> list[tuple[int, RawDevice]]:
        return [(h, self.registry.device(h)) for h in self.registry.handles()]


@lru_cache(maxsize=1)
def rpc_library() -> RpcLibrary | None:
    path = rpc_library_path()
    if path is None:
        return None
    registry = ggml_registry()  # loads libllama (and libggml) before libggml-rpc
    if registry is None or not registry.devices:
        return None
    try:
        return RpcLibrary(path, registry)
    except (OSError, AttributeError):
        return None


def rpc_available() -> bool:
    """Whether this llama.cpp build can split a model across machines (built with -DGGML_RPC=on)."""
    try:
        import llama_cpp
    except ImportError:
        return False
    return bool(llama_cpp.llama_supports_rpc()) and rpc_library() is not None


def rpc_status() -> str:
    """One line for ``hearth --version`` and the About box."""
    if rpc_available():
        from app.engine.rpc import PROTOCOL

        return f"RPC available (protocol {'.'.join(map(str, PROTOCOL))})"
    return "RPC not available (llama-cpp-python was built without -DGGML_RPC=on)"


def _require() -> RpcLibrary:
    lib = rpc_library() if rpc_available() else None
    if lib is None:
        raise RpcError("", "unavailable", "this Hearth's llama.cpp was built without the RPC backend: "
                       "reinstall llama-cpp-python with CMAKE_ARGS=-DGGML_RPC=on to use remote machines")
    return lib


# ---- the chatting side (runs in the worker process) ---------------------------------------

_registered: dict[str, RemoteMachine] = {}


def register_servers(endpoints: Sequence[RpcEndpoint | str], timeout: float = 10.0) -> list[RemoteMachine]:
    """Probe, then register each server's devices with ggml (once per process), in order.

    The probe comes first because llama.cpp aborts the whole process when it cannot reach a
    server; this way an unreachable machine or another protocol version is a clear error.
    """
    lib = _require()
    # A server that dies later still aborts inside llama.cpp: skip the slow gdb backtrace, so
    # the app learns of it at once and restarts the engine.
    os.environ.setdefault("GGML_NO_BACKTRACE", "1")
    machines = []
    for ep in endpoints:
        name = str(ep)
        machine = probe(ep, timeout)
        if name not in _registered:
            reg = lib.add_server(name.encode())
            if not reg:
                raise RpcError(name, "protocol", f"{name} offers no devices")
            lib.registry.register(reg)
        _registered[name] = machine
        machines.append(machine)
    return machines


def registered_endpoints() -> tuple[str, ...]:
    return tuple(_registered)


def model_devices(endpoints: Sequence[RpcEndpoint | str]) -> tuple[ctypes.Array[ctypes.c_void_p] | None,
                                                                   list[RawDevice]]:
    """The device list for ``llama_model_params.devices``: the chosen servers' devices, then local GPUs.

    llama.cpp's own default, restricted to ``endpoints``: a server registered for an earlier
    model stays registered in this process, but must not receive this model's layers.
    Returns (None, []) when no server was ever registered here (llama.cpp's default applies).
    """
    lib = rpc_library()
    if lib is None or not _registered:
        return None, []
    wanted = [str(e) for e in endpoints]
    remote: dict[str, list[tuple[int, RawDevice]]] = {w: [] for w in wanted}
    gpus: list[tuple[int, RawDevice]] = []
    igpus: list[tuple[int, RawDevice]] = []
    for handle, dev in lib.devices():
        if dev.is_remote:
            if dev.description in remote:
                remote[dev.description].append((handle, dev))
        elif dev.kind == DEVICE_GPU:
            gpus.append((handle, dev))
        elif dev.kind == DEVICE_IGPU:
            igpus.append((handle, dev))
    chosen = [pair for w in wanted for pair in remote[w]] + gpus + ([] if gpus else igpus)
    array = (ctypes.c_void_p * (len(chosen) + 1))(*[h for h, _ in chosen], None)
    return array, [d for _, d in chosen]


# ---- the serving side (`hearth rpc-server`) -----------------------------------------------


def local_devices() -> list[RawDevice]:
    return [dev for _, dev in _require().devices()]


def server_devices(names: Sequence[str] = ()) -> list[int]:
    """Device handles to serve: the named ones, else every GPU, else the CPU (like rpc-server)."""
    listed = _require().devices()
    if names:
        by_name = {dev.name.lower(): handle for handle, dev in listed}  # ggml_backend_dev_by_name ignores case
        handles = []
        for name in names:
            if name.lower() not in by_name:
                known = ", ".join(d.name for _, d in listed if not d.is_remote)
                raise RpcError("", "device", f"no device named {name!r} here; this machine has: {known}")
            handles.append(by_name[name.lower()])
        return handles
    gpus = [h for h, d in listed if d.kind in (DEVICE_GPU, DEVICE_IGPU) and not d.is_remote]
    cpus = [h for h, d in listed if d.kind == DEVICE_CPU]
    return gpus or cpus[:1]


def described(handles: Sequence[int]) -> list[RawDevice]:
    registry = _require().registry
    return [registry.device(h) for h in handles]


def start_server(endpoint: str, handles: Sequence[int], cache_dir: str | None, n_threads: int) -> None:
    """Serve ``handles`` at ``endpoint``; blocks for good (returns only if it cannot listen)."""
    lib = _require()
    array = (ctypes.c_void_p * len(handles))(*handles)
    lib.start_server(endpoint.encode(), cache_dir.encode() if cache_dir else None, n_threads,
                     len(handles), array)


def prepare_devices(endpoints: Sequence[str]) -> tuple[ctypes.Array[ctypes.c_void_p] | None, list[SplitDevice]]:
    """In the worker, before a load: register ``endpoints`` and say which devices the model may use.

    Returns the NULL-terminated device array for ``llama_model_params.devices`` (None: llama.cpp's
    default) and the devices that take layers, with free memory, for the split line.
    """
    machines = register_servers(endpoints) if endpoints else []
    array, devices = model_devices(endpoints)
    split: list[SplitDevice] = [SplitDevice(d.label, d.free_bytes) for m in machines for d in m.devices]
    local = [d for d in devices if not d.is_remote]
    split += [SplitDevice("this GPU" if len(local) == 1 else f"this machine's {d.name}", d.free_bytes)
              for d in local]
    return array, split
