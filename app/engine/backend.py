"""Which llama.cpp backend this build runs on (the version line, the About box and the self-test name it)."""

from __future__ import annotations

import sys
from pathlib import Path


def backend_name(offload: bool | None = None) -> str:
    """The llama.cpp backend this build runs on: CPU, CUDA, Metal or Vulkan."""
    try:
        import llama_cpp
    except ImportError:
        return "no llama.cpp"
    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    names = " ".join(p.name.lower() for p in lib_dir.glob("*")) if lib_dir.is_dir() else ""
    if offload is None:
        from app.engine.offload import build_offloads

        offload = build_offloads()
    for marker, label in (("cuda", "CUDA"), ("metal", "Metal"), ("vulkan", "Vulkan"), ("hip", "ROCm")):
        if marker in names:
            return label if offload else f"CPU ({label} build, no GPU found)"
    return "Metal" if offload and sys.platform == "darwin" else ("GPU" if offload else "CPU")
