"""The worker registers remote machines itself, before the load: clear errors, and no leftovers for the next model."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import pytest

from app.engine.client import EngineClient
from app.engine.protocol import EngineError, LoadSettings, SamplingSettings
from tests.engine.rpc_servers import start_rpc_server
from tests.engine.tiny_gguf import write_tiny_gguf

GREEDY = SamplingSettings(temperature=0, max_tokens=6, repeat_penalty=1.0)


@pytest.mark.slow
def test_a_version_mismatch_at_load_is_a_load_error_and_the_engine_stays_up(tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "tiny.gguf")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    endpoint = f"127.0.0.1:{server.getsockname()[1]}"

    def newer_server() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(9 + 24, socket.MSG_WAITALL)
            conn.sendall(struct.pack("<Q", 28) + bytes([8, 0, 0, 0]) + bytes(24))
            conn.recv(1)

    threading.Thread(target=newer_server, daemon=True).start()
    try:
        with EngineClient() as client:
            with pytest.raises(EngineError) as caught:
                client.load_model(LoadSettings(str(model), n_ctx=256, n_gpu_layers=-1, rpc=(endpoint,)))
            assert caught.value.kind == "load"
            assert f"{endpoint} speaks RPC protocol 8.0.0, this Hearth speaks 7.0.0" in str(caught.value)
            assert client.crashes == 0  # llama.cpp would have aborted the worker: the probe came first
            client.load_model(LoadSettings(str(model), n_ctx=256))
            assert "".join(client.stream("hello", sampling=GREEDY))
    finally:
        server.close()


@pytest.mark.slow
def test_a_local_load_after_a_split_one_leaves_the_servers_alone(tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "tiny.gguf", n_layer=4)
    first, second = start_rpc_server(), start_rpc_server()
    try:
        with EngineClient() as client:
            info = client.load_model(LoadSettings(str(model), n_ctx=256, n_gpu_layers=-1,
                                                  rpc=(first.endpoint, second.endpoint)))
            assert info.split == f"4 layers: 3 on {first.endpoint} (device 0), 1 on {second.endpoint} (device 0)"
            split = "".join(client.stream("hello", sampling=GREEDY))
            # Same worker, no --rpc: the servers stay registered in it but get no layers.
            local_info = client.load_model(LoadSettings(str(model), n_ctx=256, n_gpu_layers=-1))
            assert local_info.split == ""
            first.stop()
            second.stop()
            local = "".join(client.stream("hello", sampling=GREEDY))
            assert client.crashes == 0
    finally:
        first.stop()
        second.stop()
    assert local == split


@pytest.mark.slow
def test_the_plan_counts_the_remote_machines_free_memory(tmp_path: Path) -> None:
    from app.engine.chat_session import plan_load
    from app.engine.gguf_meta import read_gguf_metadata

    model = write_tiny_gguf(tmp_path / "tiny.gguf", n_layer=4)
    server = start_rpc_server()
    try:
        settings, plan = plan_load(model, read_gguf_metadata(model), ctx=256, rpc=[server.endpoint])
    finally:
        server.stop()
    assert settings.rpc == (server.endpoint,)
    assert settings.n_gpu_layers == 5  # every block and the output layer go to the remote machine
    assert plan.split == f"4 layers: 4 on {server.endpoint} (device 0)"
    assert str(plan).startswith(f"4 layers: 4 on {server.endpoint} (device 0) · ")
