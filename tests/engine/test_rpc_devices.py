"""The RPC code reads ggml's devices through the one registry walk in app.catalog.devices."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.catalog import devices
from app.engine import rpc_native
from tests.engine.rpc_servers import start_rpc_server

ROOT = Path(__file__).resolve().parents[2]


def test_the_device_kinds_are_the_ones_in_this_builds_header() -> None:
    """ggml_backend_dev_type as the installed ggml-backend.h numbers it (IGPU before ACCEL)."""
    import llama_cpp

    header = Path(llama_cpp.__file__).parents[1] / "include" / "ggml-backend.h"
    if not header.exists():
        pytest.skip("this llama-cpp-python install has no headers")
    body = re.search(r"enum ggml_backend_dev_type \{(.*?)\};", header.read_text(), re.S)
    assert body is not None
    names = re.findall(r"GGML_BACKEND_DEVICE_TYPE_(\w+)", body.group(1))
    numbers = {name: index for index, name in enumerate(names)}
    ours = {"CPU": devices.DEVICE_CPU, "GPU": devices.DEVICE_GPU, "IGPU": devices.DEVICE_IGPU,
            "ACCEL": devices.DEVICE_ACCEL}
    assert ours == {name: numbers[name] for name in ours}
    assert not hasattr(rpc_native, "DEVICE_ACCEL")  # one copy of the numbers


def test_rpc_native_lists_what_the_catalogue_sees() -> None:
    view = devices.ggml_view()
    assert view is not None and view.devices is not None
    assert rpc_native.local_devices() == list(view.devices)
    lib = rpc_native.rpc_library()
    assert lib is not None and lib.registry is devices.ggml_registry()
    cpu = [h for h, d in lib.devices() if d.kind == devices.DEVICE_CPU]
    assert rpc_native.server_devices() == cpu[:1]  # no GPU here: the CPU is served
    assert rpc_native.server_devices(["cpu"]) == cpu[:1]  # names match without case, as in ggml


_CHILD = textwrap.dedent("""
    import json, sys
    from dataclasses import asdict
    from app.catalog import devices
    from app.engine import rpc_native

    endpoint = sys.argv[1]
    rpc_native.register_servers([endpoint])
    view = devices.ggml_view()
    _, chosen = rpc_native.model_devices([endpoint])
    _, none_chosen = rpc_native.model_devices([])
    print(json.dumps({
        "view": [asdict(d) | {"is_remote": d.is_remote} for d in view.devices],
        "chosen": [asdict(d) for d in chosen],
        "none_chosen": [asdict(d) for d in none_chosen],
        "usable_gpus": [asdict(d) for d in devices.detect_devices().devices],
        "served": [asdict(d) for d in rpc_native.described(rpc_native.server_devices())],
    }))
""")


@pytest.mark.slow
def test_a_registered_server_shows_in_the_one_device_list_as_remote() -> None:
    """In a child process (a registration lasts for the process): the server's device, seen once, used right."""
    server = start_rpc_server()
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, server.endpoint], capture_output=True, text=True,
                              timeout=120, cwd=ROOT, check=False)
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    remote = [d for d in seen["view"] if d["is_remote"]]
    assert len(remote) == 1 and remote[0]["backend"] == "RPC" and remote[0]["description"] == server.endpoint
    assert remote[0]["free_bytes"] == remote[0]["total_bytes"] == 0  # no network round trip per listing
    assert [d["name"] for d in seen["chosen"]] == [remote[0]["name"]]
    assert seen["none_chosen"] == []  # registered, but not asked for: no layers go there
    assert seen["usable_gpus"] == []  # a remote machine is not a local GPU for the catalogue
    assert [d["backend"] for d in seen["served"]] == ["CPU"]  # this machine would serve its CPU, not the remote
