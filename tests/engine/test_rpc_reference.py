"""Hearth against llama.cpp's own rpc-server (bench/reference_tools.sh builds it from the same sources)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from app.engine.client import EngineClient
from app.engine.protocol import LoadSettings, SamplingSettings
from app.engine.rpc import RpcError, probe
from tests.assets import assets_dir
from tests.engine.rpc_servers import free_port
from tests.engine.tiny_gguf import write_tiny_gguf

REFERENCE = assets_dir() / "llama.cpp-tools" / "bin" / "ggml-rpc-server"


@pytest.mark.slow
@pytest.mark.skipif(not REFERENCE.is_file(), reason="run bench/reference_tools.sh to build llama.cpp's rpc-server")
def test_hearth_chats_through_llama_cpps_own_rpc_server(tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "tiny.gguf", n_layer=4)
    port = free_port()
    server = subprocess.Popen([str(REFERENCE), "-p", str(port), "-t", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                machine = probe(endpoint, timeout=2)
                break
            except RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert machine.version == (7, 0, 0) and len(machine.devices) == 1
        greedy = SamplingSettings(temperature=0, max_tokens=6, repeat_penalty=1.0)
        with EngineClient() as client:
            client.load_model(LoadSettings(str(model), n_ctx=256))
            local = "".join(client.stream("hello", sampling=greedy))
            info = client.load_model(LoadSettings(str(model), n_ctx=256, n_gpu_layers=-1, rpc=(endpoint,)))
            split = "".join(client.stream("hello", sampling=greedy))
        assert info.split == f"4 layers: 4 on {endpoint} (device 0)"
        assert split == local
    finally:
        server.kill()
        server.wait(10)
