"""Remote machines without a model: addresses, the RPC handshake against real sockets, settings, the split."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.catalog.fit import Fit, assess
from app.catalog.hardware import GB, Hardware
from app.catalog.model import Variant
from app.engine.offload import SplitDevice, describe_split, split_layers
from app.engine.rpc import (
    PROTOCOL,
    RemoteSettings,
    RpcEndpoint,
    RpcError,
    load_remote_settings,
    parse_endpoint,
    parse_endpoints,
    probe,
    save_remote_settings,
)
from app.errors import HearthError
from tests.assets import assets_dir

VENDORED_HEADER = assets_dir() / "llama_cpp_python-0.3.36/vendor/llama.cpp/ggml/include/ggml-rpc.h"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- addresses ---------------------------------------------------------------------------


def test_endpoints_parse_with_the_default_port_and_drop_duplicates() -> None:
    assert parse_endpoint("studio:50053") == RpcEndpoint("studio", 50053)
    assert parse_endpoint(" studio ") == RpcEndpoint("studio", 50052)
    assert parse_endpoints("a:1, b:2 a:1") == (RpcEndpoint("a", 1), RpcEndpoint("b", 2))
    assert [str(e) for e in parse_endpoints(["10.0.0.2:50052,10.0.0.3"])] == ["10.0.0.2:50052",
                                                                              "10.0.0.3:50052"]


@pytest.mark.parametrize("text, words", [
    ("studio:http", "port must be a number"),
    ("studio:70000", "between 1 and 65535"),
    ("[::1]:50052", "IPv6"),
    ("user@studio:50052", "not a machine address"),
    ("", "empty"),
])
def test_bad_addresses_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(RpcError) as caught:
        parse_endpoint(text)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_our_protocol_version_is_the_vendored_one() -> None:
    if not VENDORED_HEADER.is_file():
        pytest.skip("the vendored llama.cpp sources are not in the test-asset cache")
    text = VENDORED_HEADER.read_text()
    for part, value in zip(("MAJOR", "MINOR", "PATCH"), PROTOCOL, strict=True):
        assert f"#define RPC_PROTO_{part}_VERSION    {value}" in text


# ---- the handshake, against sockets speaking the real framing -------------------------------


@pytest.fixture
def fake_server() -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    """Start a one-connection TCP server on loopback running ``handle``; yields its endpoint."""
    servers: list[socket.socket] = []

    def start(handle: Callable[[socket.socket], None]) -> str:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        servers.append(server)

        def serve() -> None:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                handle(conn)

        threading.Thread(target=serve, daemon=True).start()
        return f"127.0.0.1:{server.getsockname()[1]}"

    yield start
    for server in servers:
        server.close()


def _read_request(conn: socket.socket) -> tuple[int, bytes]:
    head = conn.recv(9, socket.MSG_WAITALL)
    cmd, size = head[0], struct.unpack("<Q", head[1:])[0]
    return cmd, conn.recv(size, socket.MSG_WAITALL) if size else b""


def test_a_closed_port_is_named_with_what_to_do() -> None:
    port = free_port()
    with pytest.raises(RpcError) as caught:
        probe(f"127.0.0.1:{port}", timeout=2)
    assert caught.value.kind == "refused"
    assert f"127.0.0.1:{port}" in str(caught.value) and "hearth rpc-server" in str(caught.value)


def test_an_unknown_host_is_named() -> None:
    with pytest.raises(RpcError) as caught:
        probe("no-such-host.invalid:50052", timeout=2)
    assert caught.value.kind == "unknown_host"
    assert "no-such-host.invalid" in str(caught.value)


def test_another_protocol_version_is_reported_with_both_versions(fake_server: Callable[..., str]) -> None:
    def old_server(conn: socket.socket) -> None:
        cmd, payload = _read_request(conn)
        assert cmd == 14 and len(payload) == 24  # HELLO with the transport capabilities
        conn.sendall(struct.pack("<Q", 28) + bytes([6, 1, 0, 0]) + bytes(24))

    endpoint = fake_server(old_server)
    with pytest.raises(RpcError) as caught:
        probe(endpoint, timeout=2)
    assert caught.value.kind == "version" and caught.value.endpoint == endpoint
    message = str(caught.value)
    assert endpoint in message and "6.1.0" in message and "7.0.0" in message


def test_a_server_that_hangs_up_in_the_handshake_is_a_version_problem(fake_server: Callable[..., str]) -> None:
    endpoint = fake_server(lambda conn: _read_request(conn))  # reads HELLO, closes (a v6 server does)
    with pytest.raises(RpcError) as caught:
        probe(endpoint, timeout=2)
    assert caught.value.kind == "version" and endpoint in str(caught.value)


def test_a_server_serving_someone_else_is_busy(fake_server: Callable[..., str]) -> None:
    release = threading.Event()
    endpoint = fake_server(lambda conn: release.wait(5))  # accepted, never answers
    try:
        with pytest.raises(RpcError) as caught:
            probe(endpoint, timeout=0.5)
    finally:
        release.set()
    assert caught.value.kind == "busy" and "one client at a time" in str(caught.value)


def test_devices_and_free_memory_come_from_the_protocol(fake_server: Callable[..., str]) -> None:
    def server(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(struct.pack("<Q", 28) + bytes([7, 0, 0, 0]) + bytes(24))
        cmd, _ = _read_request(conn)
        assert cmd == 15
        conn.sendall(struct.pack("<QI", 4, 2))
        for free in (3 * GB, 5 * GB):
            cmd, payload = _read_request(conn)
            assert cmd == 11 and len(payload) == 4
            conn.sendall(struct.pack("<QQQ", 16, free, 8 * GB))

    endpoint = fake_server(server)
    machine = probe(endpoint, timeout=2)
    assert machine.version == (7, 0, 0)
    assert [(d.index, d.free_bytes) for d in machine.devices] == [(0, 3 * GB), (1, 5 * GB)]
    assert machine.free_bytes == 8 * GB
    assert "device 1: 5.0 GB free of 8.0 GB" in machine.summary()


# ---- the user's list -----------------------------------------------------------------------


def test_remote_settings_keep_other_settings_and_skip_bad_entries(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"theme": "dark", "remote_machines": {"endpoints": ["a:1", "bad:port"]}}))
    assert load_remote_settings(path).endpoints == (RpcEndpoint("a", 1),)
    save_remote_settings(path, RemoteSettings((RpcEndpoint("studio", 50052),), enabled=False))
    data = json.loads(path.read_text())
    assert data["theme"] == "dark"
    loaded = load_remote_settings(path)
    assert loaded.endpoints == (RpcEndpoint("studio", 50052),) and loaded.active == ()
    assert RemoteSettings(loaded.endpoints, True).active == ("studio:50052",)
    path.write_text("{not json")
    assert load_remote_settings(path) == RemoteSettings()


# ---- planning the split ----------------------------------------------------------------------


def test_layers_split_like_llama_cpp_in_proportion_to_free_memory() -> None:
    # llama.cpp counts the output layer in the share: 30 layers + output over two equal devices.
    assert split_layers(31, 30, [10, 10]) == [16, 14]
    assert split_layers(999, 4, [10, 10]) == [3, 1]
    # llama.cpp's n_gpu_layers counts the output layer: 10 means the output and the last 9 blocks.
    assert sum(split_layers(10, 30, [1, 3])) == 9
    assert split_layers(0, 30, [1, 1]) == [0, 0]


def test_the_split_line_names_each_machine() -> None:
    devices = [SplitDevice("studio:50052 (device 0)", 28 * GB), SplitDevice("this GPU", 14 * GB)]
    assert describe_split(41, 40, devices) == "40 layers: 28 on studio:50052 (device 0), 12 on this GPU"
    assert describe_split(20, 40, devices).endswith("21 on this machine's CPU")


def test_a_model_too_big_here_fits_with_remote_machines() -> None:
    variant = Variant(model_id="big", repo="x/y", revision="main", format="gguf", bits=4, size_bytes=41 * GB,
                      files=("big.gguf",))
    hw = Hardware(ram_total=32 * GB, ram_available=24 * GB)
    assert assess(variant, hw).fit is Fit.NO
    report = assess(variant, hw, remote_free=30 * GB)
    assert report.fit is Fit.REMOTE and report.fit.value == "fits with your remote machines"
    assert "30.0 GB free there" in report.reason
    assert assess(variant, hw, remote_free=5 * GB).fit is Fit.NO


def test_a_damaged_settings_file_is_never_overwritten_by_a_save(tmp_path: Path) -> None:
    """Saving the machines into a settings file that cannot be read would lose the user's other settings:
    it is refused with the file named, and the file stays as it was."""
    path = tmp_path / "settings.json"
    path.write_text('{"theme": "dark", "threads": 4,')  # cut short by a crash mid-write elsewhere
    with pytest.raises(HearthError, match=r"settings\.json"):
        save_remote_settings(path, RemoteSettings((RpcEndpoint("studio", 50052),)))
    assert path.read_text() == '{"theme": "dark", "threads": 4,'
