"""Transfer details that must hold everywhere: hashlib's own OpenSSL, the socket fast path's off switch
and fall-back, HTTPS on loopback with a certificate made here, and garbled answers named as such."""

from __future__ import annotations

import ctypes.util
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub.utils import close_session

from app.hub import hashing, manifest, receive
from app.hub.errors import HubError, HubProtocolError
from app.hub.listing import list_files
from app.hub.receive import BodyReader
from app.hub.transfer import Control, download_file
from tests.hub.conftest import GGUF_REPO, gguf_payload, running_hub
from tests.hub.hub_server import Fault, HubServer

NAME = "tiny.Q8_0.gguf"
SIZE = 500_000


def _fetch(dest_dir: Path) -> Path:
    listing = list_files(GGUF_REPO)
    f = listing.file(NAME)
    return download_file(GGUF_REPO, listing.commit, f, dest_dir / f.path, Control(), lambda _n: None)


def _spy_direct(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    used: list[bool] = []
    real_init = BodyReader.__init__

    def init(self: BodyReader, *args: object, **kwargs: object) -> None:
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]
        used.append(self.direct)

    monkeypatch.setattr(BodyReader, "__init__", init)
    return used


# -- hashlib's own libcrypto ------------------------------------------------------------------
def test_libcrypto_is_the_one_hashlib_loaded_never_find_library(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(name: str) -> str | None:
        raise AssertionError(f"find_library({name!r}) was called: on macOS it loads a stub that aborts")

    monkeypatch.setattr(ctypes.util, "find_library", forbidden)
    hashing._libcrypto.cache_clear()
    try:
        paths = hashing._linked_libcrypto()
        if not paths:
            pytest.skip("this Python's hashlib links OpenSSL statically")
        maps = Path("/proc/self/maps").read_text()
        assert all(p in maps for p in paths)  # already in the process: nothing new was loaded
        assert hashing.resumable_sha256_available()
        digest = hashing.new_hash(sha256=True, size=10)
        digest.update(b"hello")
        again = hashing.new_hash(sha256=True, size=10, state=digest.state())
        again.update(b" world")
        import hashlib

        assert again.hexdigest() == hashlib.sha256(b"hello world").hexdigest()
    finally:
        hashing._libcrypto.cache_clear()


def test_without_resumable_sha256_a_resume_rehashes_and_still_verifies(
        hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_RESUMABLE_SHA256", "0")
    hashing._libcrypto.cache_clear()
    try:
        assert not hashing.resumable_sha256_available()
        hub.inject(Fault("drop", path=NAME, after=200_000))
        path = _fetch(tmp_path)
        assert path.read_bytes() == gguf_payload(SIZE, 2)
        assert hub.bytes_served[NAME] == SIZE
    finally:
        monkeypatch.delenv("HEARTH_RESUMABLE_SHA256")
        hashing._libcrypto.cache_clear()


# -- the socket fast path ---------------------------------------------------------------------
def test_environment_switch_turns_the_fast_path_off(hub: HubServer, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    used = _spy_direct(monkeypatch)
    monkeypatch.setenv("HEARTH_DIRECT_RECV", "0")
    path = _fetch(tmp_path)
    assert path.read_bytes() == gguf_payload(SIZE, 2)
    assert used == [False]
    monkeypatch.delenv("HEARTH_DIRECT_RECV")
    (tmp_path / "again").mkdir()
    _fetch(tmp_path / "again")
    assert used == [False, True]  # the default is the fast path


def test_checksum_mismatch_on_the_fast_path_falls_back_to_httpx(
        hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fast path that garbles bytes (the server is fine): the file is fetched again through httpx2."""
    used = _spy_direct(monkeypatch)
    real_recv = BodyReader._recv_into
    flipped = {"done": False}

    def garbling(self: BodyReader, view: memoryview) -> int:
        n = real_recv(self, view)
        if n and not flipped["done"]:
            view[0] ^= 0xFF
            flipped["done"] = True
        return n

    monkeypatch.setattr(BodyReader, "_recv_into", garbling)
    path = _fetch(tmp_path)
    assert path.read_bytes() == gguf_payload(SIZE, 2)
    assert manifest.is_verified(tmp_path, NAME)
    assert used == [True, False]
    assert hub.bytes_served[NAME] == 2 * SIZE
    assert not receive.direct_enabled()  # the rest of this run reads through httpx2


# -- HTTPS on loopback ------------------------------------------------------------------------
@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a certificate")
    cert, key = tmp_path / "hub.pem", tmp_path / "hub.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def tls_hub(monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]) -> Iterator[HubServer]:
    cert, key = certificate
    real_start = HubServer.start
    monkeypatch.setattr(HubServer, "start", lambda self: real_start(self.use_tls(cert, key)))
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust exactly this certificate
    close_session()  # huggingface_hub's client is made again, with that trust
    try:
        yield from running_hub(monkeypatch)
    finally:
        close_session()


def test_https_download_verified_against_a_self_signed_certificate(
        tls_hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert tls_hub.url.startswith("https://127.0.0.1:")
    used = _spy_direct(monkeypatch)
    tls_hub.inject(Fault("drop", path=NAME, after=180_000))  # and a resume over TLS
    path = _fetch(tmp_path)
    assert path.read_bytes() == gguf_payload(SIZE, 2)
    assert manifest.is_verified(tmp_path, NAME)
    assert used == [True, True]  # TLS straight on the socket still takes the fast path
    assert tls_hub.bytes_served[NAME] == SIZE


def test_https_with_an_untrusted_certificate_is_refused(
        tls_hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    close_session()
    with pytest.raises(HubError):
        list_files(GGUF_REPO)
    assert tls_hub.bytes_served[NAME] == 0


# -- garbled answers --------------------------------------------------------------------------
@pytest.fixture
def garbling_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A server that answers every request with a bad status line."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 2OO Fine Thanks\r\nContent-Length: 2\r\n\r\nok")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", url)
    yield url
    stop.set()
    listener.close()
    thread.join(5)


def test_bad_status_line_is_a_protocol_error_not_no_connection(garbling_server: str) -> None:
    with pytest.raises(HubProtocolError) as caught:
        list_files(GGUF_REPO)
    message = str(caught.value)
    assert "not valid HTTP" in message and garbling_server in message
    assert "internet connection" not in message
