"""Planning a load across this machine and remote ones: probe each, count their free memory, split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from app.engine.gguf_meta import GGUFMetadata
from app.engine.offload import OffloadPlan, SplitDevice, detect_gpu, plan_offload, plan_split
from app.engine.rpc import RpcError, parse_endpoints, probe
from app.errors import HearthError


def plan_with_remotes(
    meta: GGUFMetadata,
    rpc: Sequence[str],
    ctx: int,
    kv_type: str = "f16",
    gpu_layers: int | None = None,
    timeout: float = 5.0,
) -> tuple[tuple[str, ...], OffloadPlan]:
    """The endpoints (normalised) and a plan whose layers go to the remote machines and local GPUs.

    An unreachable machine or another protocol version raises an RpcError naming it. A machine
    busy with this app's own loaded model cannot answer now; then every layer is offloaded and
    llama.cpp splits them by free memory at load (the worker probes again first).
    """
    from app.engine.rpc_native import rpc_available

    endpoints = parse_endpoints(list(rpc))
    if not rpc_available():
        raise HearthError("this Hearth's llama.cpp was built without the RPC backend, so it cannot use "
                          "remote machines: reinstall llama-cpp-python with CMAKE_ARGS=-DGGML_RPC=on")
    support = detect_gpu()
    local_gpus = support.devices if support.offload else ()
    remote: list[SplitDevice] = []
    busy: list[str] = []
    for ep in endpoints:
        try:
            machine = probe(ep, timeout)
        except RpcError as exc:
            if exc.kind != "busy":
                raise
            busy.append(str(ep))
            continue
        remote += [SplitDevice(d.label, d.free_bytes) for d in machine.devices]
    names = tuple(str(e) for e in endpoints)
    if busy:
        layers = gpu_layers if gpu_layers is not None else (meta.block_count or 0) + 1
        plan = plan_offload(meta, 0, ctx, kv_type, n_gpu_layers=layers)
        where = ", ".join(names)
        return names, replace(plan, split=f"{plan.total_layers} layers over {where} and this machine "
                                            "(split by free memory at load)")
    return names, plan_split(meta, local_gpus, remote, ctx, kv_type, n_gpu_layers=gpu_layers)
