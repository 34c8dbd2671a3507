"""Checksums computed while writing, whose state can be saved to disk and restored after a restart.

The Hub gives LFS files a sha256 and other files a git blob id (sha1 of ``blob <size>\\0`` + bytes).
hashlib cannot save a running sha256, so :class:`Sha256` uses OpenSSL's ``SHA256_CTX`` through ctypes,
from the very libcrypto hashlib loaded (the state is 112 plain bytes); where that library cannot be
found (a static OpenSSL) it falls back to hashlib and a resumed file is hashed again from disk once.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import queue
import struct
import sys
import threading
from functools import lru_cache
from pathlib import Path
from typing import Protocol

_CTX_SIZE = 112  # sizeof(SHA256_CTX): 8+2+16+2 unsigned ints
_BUFFER = 256


class RunningHash(Protocol):
    def update(self, data: bytes | memoryview) -> None: ...
    def hexdigest(self) -> str: ...
    def state(self) -> bytes | None: ...


def _linked_libcrypto() -> list[str]:
    """The libcrypto that Python's own ``_hashlib`` loaded into this process (no other copy is ever
    loaded: ``find_library("crypto")`` finds macOS's stub, which aborts the process when loaded)."""
    import _hashlib  # noqa: F401  (loads the OpenSSL that hashlib itself uses)

    paths: list[str] = []
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError), open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = [line.split(None, 5)[5].strip() for line in maps if len(line.split(None, 5)) == 6]
    elif sys.platform == "darwin":
        libc = ctypes.CDLL(None)
        libc._dyld_image_count.restype = ctypes.c_uint32
        libc._dyld_get_image_name.restype = ctypes.c_char_p
        libc._dyld_get_image_name.argtypes = [ctypes.c_uint32]
        images = (libc._dyld_get_image_name(i) for i in range(libc._dyld_image_count()))
        paths = [name.decode(errors="replace") for name in images if name]
    else:
        with contextlib.suppress(Exception):
            import psutil

            paths = [m.path for m in psutil.Process().memory_maps()]
    found = [p for p in dict.fromkeys(paths) if "libcrypto" in os.path.basename(p).lower()]
    return [p for p in found if os.path.isfile(p)]


@lru_cache(maxsize=1)
def _libcrypto() -> ctypes.CDLL | None:
    """hashlib's own libcrypto with the SHA256 functions, if it saves and restores state correctly here."""
    if os.environ.get("HEARTH_RESUMABLE_SHA256", "1") == "0":
        return None
    for name in _linked_libcrypto():
        try:
            lib = ctypes.CDLL(name)
            for fn in ("SHA256_Init", "SHA256_Update", "SHA256_Final"):
                getattr(lib, fn).restype = ctypes.c_int
            lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
            lib.SHA256_Init.argtypes = [ctypes.c_void_p]
            lib.SHA256_Final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        except (OSError, AttributeError):
            continue
        if _self_test(lib):
            return lib
    return None


def _self_test(lib: ctypes.CDLL) -> bool:
    data = bytes(range(256)) * 5
    ctx = ctypes.create_string_buffer(_BUFFER)
    lib.SHA256_Init(ctx)
    lib.SHA256_Update(ctx, data[:700], 700)
    restored = ctypes.create_string_buffer(ctx.raw[:_CTX_SIZE], _BUFFER)
    lib.SHA256_Update(restored, data[700:], len(data) - 700)
    out = ctypes.create_string_buffer(32)
    lib.SHA256_Final(out, restored)
    return out.raw.hex() == hashlib.sha256(data).hexdigest()


class _OpenSslSha256:
    def __init__(self, state: bytes | None = None) -> None:
        lib = _libcrypto()
        assert lib is not None
        self._lib = lib
        self._ctx = ctypes.create_string_buffer(_BUFFER)
        if state is None:
            lib.SHA256_Init(self._ctx)
        else:
            ctypes.memmove(self._ctx, state, _CTX_SIZE)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if isinstance(data, bytes):  # ctypes passes a bytes object's own buffer: no copy
            self._lib.SHA256_Update(self._ctx, data, len(data))
            return
        view = memoryview(data)
        if view.nbytes:
            buf = (ctypes.c_char * view.nbytes).from_buffer_copy(view) if view.readonly else \
                (ctypes.c_char * view.nbytes).from_buffer(view)
            self._lib.SHA256_Update(self._ctx, buf, view.nbytes)

    def hexdigest(self) -> str:
        ctx = ctypes.create_string_buffer(self._ctx.raw, _BUFFER)
        out = ctypes.create_string_buffer(32)
        self._lib.SHA256_Final(out, ctx)
        return out.raw.hex()

    def state(self) -> bytes | None:
        return self._ctx.raw[:_CTX_SIZE]


class _HashlibHash:
    """A hashlib hash (sha256, or sha1 primed with the git blob header); its state cannot be saved."""

    def __init__(self, name: str, prefix: bytes = b"") -> None:
        self._h = hashlib.new(name)
        self._h.update(prefix)

    def update(self, data: bytes | memoryview) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()

    def state(self) -> bytes | None:
        return None


def sha256_state_fits(state: bytes, offset: int) -> bool:
    """Whether a saved ``SHA256_CTX`` is one that hashed exactly ``offset`` bytes.

    Restoring any other 112 bytes could make OpenSSL copy outside its buffer (``num`` is an index
    into it), so a state that fails this is never restored.
    """
    if len(state) != _CTX_SIZE:
        return False
    low, high = struct.unpack_from("=II", state, 32)
    num, md_len = struct.unpack_from("=II", state, 104)
    return (high << 32 | low) == offset * 8 and num == offset % 64 and md_len == 32


def resumable_sha256_available() -> bool:
    return _libcrypto() is not None


def new_hash(*, sha256: bool, size: int, state: bytes | None = None) -> RunningHash:
    """A running hash for a file: sha256 (LFS) or git blob sha1, from a saved state when given."""
    if not sha256:
        return _HashlibHash("sha1", f"blob {size}\0".encode())
    if _libcrypto() is not None:
        return _OpenSslSha256(state if state is not None and len(state) == _CTX_SIZE else None)
    return _HashlibHash("sha256")


def feed_from_disk(digest: RunningHash, path: Path, start: int, end: int, chunk: int = 8 << 20) -> None:
    """Hash bytes ``start:end`` of a partial file (catching up after a restart); a link is refused."""
    from app.hub import nofollow  # here: nofollow is only needed once a file is read back

    with os.fdopen(nofollow.open_fd(path, os.O_RDONLY), "rb") as f:
        f.seek(start)
        remaining = end - start
        while remaining > 0:
            block = f.read(min(chunk, remaining))
            if not block:
                raise OSError(f"{path} is shorter than expected")
            digest.update(block)
            remaining -= len(block)


class BackgroundHash:
    """Feeds a running hash on its own thread, so hashing overlaps receiving and writing.

    The receiver takes a buffer with :meth:`buffer`, fills and writes it, then hands it over with
    :meth:`submit`; once hashed, the buffer goes back to the pool (no copies). The pool grows to
    ``buffers`` only while hashing lags (the bytes are on disk already, so a lag loses nothing on a
    kill); then the receiver waits, while the kernel's socket buffers fill. OpenSSL (through ctypes)
    and hashlib release the GIL while hashing. :attr:`snapshot` is the latest ``(offset, state)``
    pair the hash thread reached, safe to save for a resume.
    """

    def __init__(self, digest: RunningHash, offset: int, buffers: int = 64, buffer_bytes: int = 512 << 10) -> None:
        self.digest = digest
        self.snapshot: tuple[int, bytes | None] = (offset, digest.state())
        self._offset = offset
        self._free: queue.Queue[bytearray] = queue.Queue()
        self._unmade = buffers  # buffers are made only when none is free
        self._buffer_bytes = buffer_bytes
        self._queue: queue.Queue[tuple[bytearray | bytes, int] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="hash", daemon=True)
        self._thread.start()

    def buffer(self) -> bytearray:
        """A free buffer to receive into (waits only while all of them are still being hashed)."""
        try:
            return self._free.get_nowait()
        except queue.Empty:
            if self._unmade <= 0:
                return self._free.get()
        self._unmade -= 1
        return bytearray(self._buffer_bytes)

    def submit(self, buffer: bytearray, length: int) -> None:
        """Hash ``buffer[:length]`` next; the buffer returns to the pool afterwards."""
        self._queue.put((buffer, length))

    def give_back(self, buffer: bytearray) -> None:
        """Return a buffer that was taken but not submitted."""
        self._free.put(buffer)

    def update(self, data: bytes) -> None:
        """Hash a bytes object next (for callers that do not use the pool's buffers)."""
        self._queue.put((data, len(data)))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            data, length = item
            if isinstance(data, bytearray):
                self.digest.update(memoryview(data)[:length])
                self._free.put(data)
            else:
                self.digest.update(data)
            self._offset += length
            self.snapshot = (self._offset, self.digest.state())

    def close(self) -> RunningHash:
        """Hash what is pending, stop the thread, and hand back the hash."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        return self.digest
