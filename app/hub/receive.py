"""A response body read into large caller-owned buffers: straight from the socket when HTTP/1.1 allows.

httpx2 hands a body over in 64 KiB ``bytes`` pieces that go through h11's buffer (three copies and
several Python calls per piece). For a plain ``Content-Length`` body on HTTP/1.1, :class:`BodyReader`
takes the first piece from httpx2 (h11 hands over everything it has buffered as one piece, so its
buffer is empty afterwards) and then ``recv_into``\\s the rest straight from the connection's socket
into the caller's buffer. The connection is then not reusable; closing the response closes it.
Anything else (HTTP/2, chunked or compressed bodies, TLS inside a proxy's TLS) reads through httpx2.
``HEARTH_DIRECT_RECV=0`` turns the fast path off; so does :func:`turn_direct_off` for the rest of the
process (the transfer calls it when a file read that way failed its checksum).
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterator

import httpx2

_direct_off = False


def direct_enabled() -> bool:
    """Whether bodies may be read straight from the socket (HEARTH_DIRECT_RECV=0 says no)."""
    switch = os.environ.get("HEARTH_DIRECT_RECV", "1").strip().lower()
    return not _direct_off and switch not in ("0", "false", "no", "off")


def turn_direct_off() -> None:
    """From now on, read every body through httpx2 (after the fast path produced a bad checksum)."""
    global _direct_off
    _direct_off = True


def _direct_socket(response: httpx2.Response) -> socket.socket | None:
    """The socket the body can be read from directly, or None when only httpx2 may read it."""
    headers = response.headers
    if response.http_version not in ("HTTP/1.1", "HTTP/1.0") or "content-length" not in headers:
        return None
    if headers.get("transfer-encoding") or headers.get("content-encoding", "identity") != "identity":
        return None
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    sock = stream.get_extra_info("socket")
    tls = stream.get_extra_info("ssl_object")
    if not isinstance(sock, socket.socket):
        return None
    if tls is None:
        return None if isinstance(sock, ssl.SSLSocket) else sock
    # TLS straight on the socket is read through SSLSocket; TLS inside a proxy's TLS (an SSLObject
    # over memory buffers) is not.
    return sock if isinstance(sock, ssl.SSLSocket) and not isinstance(tls, ssl.SSLObject) else None


class BodyReader:
    """Reads a streamed response into caller-owned buffers; :attr:`direct` tells whether the socket fast path is on."""

    def __init__(self, response: httpx2.Response, read_timeout: float) -> None:
        self._pieces: Iterator[bytes] = response.iter_raw()
        self._sock = _direct_socket(response) if direct_enabled() else None
        self._unread = int(response.headers.get("content-length") or 0)  # body bytes not yet taken
        self._timeout = read_timeout
        self._left = memoryview(b"")
        self._first_taken = False
        self.socket_bytes = 0  # body bytes that came through the fast path

    @property
    def direct(self) -> bool:
        return self._sock is not None

    def read_some(self, view: memoryview) -> int:
        """Put the next bytes of the body into ``view`` (one socket read at most); 0 at the end."""
        while not self._left:
            if self._sock is not None and self._first_taken:
                if self._unread <= 0:
                    return 0
                n = self._recv_into(view[: self._unread])
                self._unread -= n
                self.socket_bytes += n
                return n
            self._first_taken = True
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._unread -= len(piece)
            self._left = memoryview(piece)
        n = min(len(self._left), len(view))
        view[:n] = self._left[:n]
        self._left = self._left[n:]
        return n

    def _recv_into(self, view: memoryview) -> int:
        assert self._sock is not None
        try:
            self._sock.settimeout(self._timeout)
            return self._sock.recv_into(view)
        except TimeoutError as exc:
            raise httpx2.ReadTimeout(f"no data for {self._timeout:g} s") from exc
        except OSError as exc:
            raise httpx2.ReadError(str(exc)) from exc
