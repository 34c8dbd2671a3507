"""Remote machines over llama.cpp's RPC protocol: endpoints, a pure-Python probe, the saved list."""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.engine.settings_file import read_settings, write_setting
from app.errors import HearthError

# The RPC protocol of the llama.cpp that llama-cpp-python 0.3.36 vendors
# (ggml/include/ggml-rpc.h: RPC_PROTO_MAJOR/MINOR/PATCH_VERSION). Client and server must
# agree on the major version, and the server's minor must not be newer than ours.
PROTOCOL = (7, 0, 0)
DEFAULT_PORT = 50052
LOOPBACK = "127.0.0.1"

# Wire format (ggml-rpc.cpp): request = cmd (1 byte) | size (u64) | payload; reply = size (u64) | payload.
_CMD_GET_DEVICE_MEMORY = 11
_CMD_HELLO = 14
_CMD_DEVICE_COUNT = 15
_CONN_CAPS = 24  # transport capabilities (RDMA); all zero: plain TCP
_U64 = struct.Struct("<Q")
_HELLO_REPLY = struct.Struct(f"<BBBx{_CONN_CAPS}s")
_MEMORY_REPLY = struct.Struct("<QQ")
# The RPC backend in this llama.cpp takes at most this many servers (GGML_RPC_MAX_SERVERS).
MAX_SERVERS = 16


class RpcError(HearthError):
    """A remote machine could not be used; ``endpoint`` names it, ``kind`` says why.

    kinds: "address" (not HOST:PORT), "unknown_host", "refused", "timeout", "busy",
    "version" (a different RPC protocol), "protocol" (not an RPC server), "died".
    """

    def __init__(self, endpoint: str, kind: str, message: str) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.kind = kind


@dataclass(frozen=True, order=True)
class RpcEndpoint:
    """One ``hearth rpc-server`` (or llama.cpp ``rpc-server``): where it listens."""

    host: str
    port: int = DEFAULT_PORT

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def parse_endpoint(text: str) -> RpcEndpoint:
    """``HOST:PORT`` (``HOST`` alone means port 50052); a clear error for anything else."""
    raw = text.strip()
    hint = f"expected HOST:PORT of a machine running `hearth rpc-server`, e.g. studio:{DEFAULT_PORT}"
    if not raw:
        raise RpcError(raw, "address", f"an empty remote machine address: {hint}")
    if raw.startswith("[") or raw.count(":") > 1:
        raise RpcError(raw, "address", f"{raw!r}: IPv6 addresses are not supported by llama.cpp's RPC "
                       f"backend; use an IPv4 address or a host name ({hint})")
    host, sep, port_text = raw.partition(":")
    host = host.strip()
    if not host or any(c.isspace() or c in "/@" for c in host):
        raise RpcError(raw, "address", f"{raw!r} is not a machine address: {hint}")
    if not sep:
        return RpcEndpoint(host)
    try:
        port = int(port_text)
    except ValueError:
        raise RpcError(raw, "address", f"{raw!r}: the port must be a number ({hint})") from None
    if not 0 < port < 65536:
        raise RpcError(raw, "address", f"{raw!r}: the port must be between 1 and 65535")
    return RpcEndpoint(host, port)


def parse_endpoints(text: str | Iterable[str]) -> tuple[RpcEndpoint, ...]:
    """A comma- (or space-) separated list, duplicates dropped, order kept."""
    parts = text.replace(",", " ").split() if isinstance(text, str) else [p for t in text for p in
                                                                           t.replace(",", " ").split()]
    endpoints = tuple(dict.fromkeys(parse_endpoint(p) for p in parts))
    if len(endpoints) > MAX_SERVERS:
        raise RpcError(",".join(parts), "address",
                       f"{len(endpoints)} remote machines: llama.cpp takes at most {MAX_SERVERS}")
    return endpoints


# ---- probing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteDevice:
    """One device a remote server exposes (its CPU, or one GPU), by index on that server."""

    endpoint: RpcEndpoint
    index: int
    free_bytes: int
    total_bytes: int

    @property
    def label(self) -> str:
        return f"{self.endpoint} (device {self.index})"


@dataclass(frozen=True)
class RemoteMachine:
    """What a probe found: the server's protocol version and its devices' memory."""

    endpoint: RpcEndpoint
    version: tuple[int, int, int]
    devices: tuple[RemoteDevice, ...]
    round_trip_s: float

    @property
    def free_bytes(self) -> int:
        return sum(d.free_bytes for d in self.devices)

    def summary(self) -> str:
        devices = ", ".join(f"device {d.index}: {d.free_bytes / 1e9:.1f} GB free of {d.total_bytes / 1e9:.1f} GB"
                            for d in self.devices)
        return (f"{self.endpoint}: RPC {'.'.join(map(str, self.version))}, {devices}; "
                f"round trip {self.round_trip_s * 1000:.1f} ms")


def version_compatible(version: tuple[int, int, int]) -> bool:
    """The client's rule (negotiate_hello): same major, server minor not newer than ours."""
    return version[0] == PROTOCOL[0] and version[1] <= PROTOCOL[1]


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionResetError("closed")
        data += chunk
    return data


def _call(sock: socket.socket, cmd: int, payload: bytes, reply_size: int) -> bytes:
    sock.sendall(bytes([cmd]) + _U64.pack(len(payload)) + payload)
    (size,) = _U64.unpack(_recv_exact(sock, _U64.size))
    if size != reply_size:
        raise ValueError(f"reply of {size} bytes to command {cmd}, expected {reply_size}")
    return _recv_exact(sock, size)


def _version_error(name: str, version: tuple[int, int, int]) -> RpcError:
    theirs, ours = ".".join(map(str, version)), ".".join(map(str, PROTOCOL))
    return RpcError(name, "version",
                    f"{name} speaks RPC protocol {theirs}, this Hearth speaks {ours}: run the same Hearth "
                    "version (or a llama.cpp rpc-server of the same release) on both machines")


def probe(endpoint: RpcEndpoint | str, timeout: float = 5.0) -> RemoteMachine:
    """Connect, check the protocol version, read each device's free memory; raise RpcError naming it.

    The server answers one client at a time, so a probe of a server that is serving a
    model to someone else waits and ends as ``busy``.
    """
    ep = parse_endpoint(endpoint) if isinstance(endpoint, str) else endpoint
    name = str(ep)
    started = time.perf_counter()
    try:
        sock = socket.create_connection((ep.host, ep.port), timeout=timeout)
    except socket.gaierror:
        raise RpcError(name, "unknown_host", f"{name}: unknown host {ep.host!r}: check the name, or use "
                       "the machine's IP address") from None
    except ConnectionRefusedError:
        raise RpcError(name, "refused", f"{name}: nothing is listening there (connection refused): start "
                       f"`hearth rpc-server --port {ep.port}` on that machine, or check the address") from None
    except TimeoutError:
        raise RpcError(name, "timeout", f"{name} did not answer within {timeout:.0f} s: check that the "
                       "machine is on and reachable (firewall, SSH tunnel)") from None
    except OSError as exc:
        raise RpcError(name, "refused", f"{name}: cannot connect ({exc.strerror or exc})") from None
    with contextlib.closing(sock):
        try:
            reply = _call(sock, _CMD_HELLO, bytes(_CONN_CAPS), _HELLO_REPLY.size)
            major, minor, patch, _caps = _HELLO_REPLY.unpack(reply)
            version = (major, minor, patch)
            if not version_compatible(version):
                raise _version_error(name, version)
            round_trip = time.perf_counter() - started
            (count,) = struct.unpack("<I", _call(sock, _CMD_DEVICE_COUNT, b"", 4))
            devices = []
            for index in range(min(count, 64)):
                free, total = _MEMORY_REPLY.unpack(
                    _call(sock, _CMD_GET_DEVICE_MEMORY, struct.pack("<I", index), _MEMORY_REPLY.size))
                devices.append(RemoteDevice(ep, index, free, total))
        except TimeoutError:
            raise RpcError(name, "busy", f"{name} accepted the connection but did not answer within "
                           f"{timeout:.0f} s: it serves one client at a time, and another Hearth (or a model "
                           "already loaded here) is using it; unload that model and try again") from None
        except ValueError:
            # An older or newer server: its HELLO reply has another size, or it hangs up.
            raise RpcError(name, "version", f"{name} answered, but not with RPC protocol "
                           f"{'.'.join(map(str, PROTOCOL))}: run the same Hearth version on both "
                           "machines") from None
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            raise RpcError(name, "version", f"{name} closed the connection during the handshake: it probably "
                           f"speaks another RPC protocol version than {'.'.join(map(str, PROTOCOL))}; "
                           "run the same Hearth version on both machines") from None
    if not devices:
        raise RpcError(name, "protocol", f"{name} offers no devices")
    return RemoteMachine(ep, version, tuple(devices), round_trip)


def probe_all(endpoints: Sequence[RpcEndpoint], timeout: float = 5.0) -> list[RemoteMachine]:
    """Probe each in turn; the first failure raises (it names its machine)."""
    return [probe(ep, timeout) for ep in endpoints]


@dataclass(frozen=True)
class RemoteSurvey:
    """What the machines said when asked: those that answered, and why each other one could not."""

    machines: tuple[RemoteMachine, ...] = ()
    failures: tuple[RpcError, ...] = ()

    @property
    def free_bytes(self) -> int:
        """The free memory of every device of every machine that answered."""
        return sum(m.free_bytes for m in self.machines)

    @property
    def names(self) -> tuple[str, ...]:
        """The machines that answered, as HOST:PORT."""
        return tuple(str(m.endpoint) for m in self.machines)


def survey(endpoints: Sequence[RpcEndpoint | str], timeout: float = 2.0) -> RemoteSurvey:
    """Probe each machine in turn; a machine that fails (down, busy, another version) is kept with its
    error rather than raised, so the others still count."""
    machines, failures = [], []
    for ep in endpoints:
        try:
            machines.append(probe(ep, timeout))
        except RpcError as exc:
            failures.append(exc)
    return RemoteSurvey(tuple(machines), tuple(failures))


def unreachable(endpoints: Sequence[RpcEndpoint | str], timeout: float = 1.0) -> list[str]:
    """Which of ``endpoints`` refuse or time out now (after a crash: which machine went away)."""
    gone = []
    for ep in endpoints:
        try:
            probe(ep, timeout)
        except RpcError as exc:
            if exc.kind != "busy":
                gone.append(str(ep))
    return gone


# ---- the user's list ------------------------------------------------------------------------

SETTINGS_KEY = "remote_machines"


@dataclass(frozen=True)
class RemoteSettings:
    """The "Remote machines" settings: the list, and whether loads use it."""

    endpoints: tuple[RpcEndpoint, ...] = ()
    enabled: bool = True

    @property
    def active(self) -> tuple[str, ...]:
        return tuple(str(e) for e in self.endpoints) if self.enabled else ()


def load_remote_settings(path: Path) -> RemoteSettings:
    """The saved list; entries that no longer parse are skipped, never fatal."""
    try:
        section = read_settings(path).get(SETTINGS_KEY)
    except HearthError:  # an unreadable settings file: no machines (the Settings page says why on save)
        return RemoteSettings()
    if not isinstance(section, dict):
        return RemoteSettings()
    endpoints = []
    for item in section.get("endpoints", []) if isinstance(section.get("endpoints"), list) else []:
        with contextlib.suppress(RpcError, AttributeError):
            endpoints.append(parse_endpoint(str(item)))
    return RemoteSettings(tuple(dict.fromkeys(endpoints)), bool(section.get("enabled", True)))


def save_remote_settings(path: Path, settings: RemoteSettings) -> None:
    """Write our section of settings.json, keeping every other key; atomic replace. A settings file
    that cannot be read is left alone (HearthError): the user's other settings are never overwritten."""
    write_setting(path, SETTINGS_KEY, {"endpoints": [str(e) for e in settings.endpoints],
                                       "enabled": settings.enabled})


def active_remote_machines(settings_file: Path | None = None) -> tuple[str, ...]:
    """The machines a load from the window uses: the saved list, when switched on."""
    if settings_file is None:
        from app.paths import app_dirs

        settings_file = app_dirs().settings_file
    return load_remote_settings(settings_file).active
