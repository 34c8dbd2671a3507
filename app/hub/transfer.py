"""One file from the Hub: resumable (even after ``kill -9``), cancellable, checksummed while written.

Bytes go to ``NAME.partial``; ``NAME.partial.json`` holds the offset and the running hash state,
saved every few MB. On restart the hash is restored (or rebuilt once from the partial file) and a
``Range`` request asks only for the bytes not on disk. The body is received straight into a few
large reused buffers (:mod:`app.hub.receive`), each read written at once with ``os.write`` (a kill
loses nothing that reached the process) and hashed on a thread of its own without a copy. The
finished file is checked against the Hub's sha256 (LFS) or git blob id, renamed into place and
recorded in the folder's manifest.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx2
from huggingface_hub import get_hf_file_metadata
from huggingface_hub.utils import hf_raise_for_status

from app.hub import disk, hf_cache, manifest, receive, session
from app.hub.errors import ChecksumMismatch, DownloadStopped, HubServerError, is_disk_full, translate
from app.hub.hashing import BackgroundHash, RunningHash, feed_from_disk, new_hash
from app.hub.listing import HubFile
from app.hub.receive import BodyReader

PAUSE, CANCEL = "paused", "cancelled"
CHECKPOINT_BYTES = 32 * 1024 * 1024
CHECKPOINT_SECONDS = 2.0
# Receive buffers: one hash call per buffer, one write() per socket read (at most a buffer). 512 KiB
# measured best on loopback (less kernel time than 1-4 MiB reads, fewer calls than 64-256 KiB).
BUFFER_BYTES = 512 * 1024
HASH_LAG_BYTES = 32 * 1024 * 1024  # how far hashing may fall behind before the receiver waits

ProgressFn = Callable[[int], None]


@dataclass
class TransferSettings:
    """Timeouts and retries; tests shorten them."""

    read_timeout: float = 30.0
    connect_timeout: float = 15.0
    retries: int = 5
    backoff: float = 1.0


SETTINGS = TransferSettings()


class Control:
    """Pause and cancel for running transfers, from any thread.

    A transfer checks :meth:`check` between chunks; a read blocked on a stalled connection is woken
    by shutting its socket down.
    """

    def __init__(self) -> None:
        self._reason: str | None = None
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._wake = threading.Event()

    @property
    def reason(self) -> str | None:
        return self._reason

    def stop(self, reason: str) -> None:
        with self._lock:
            self._reason = reason
            sockets = list(self._sockets)
        self._wake.set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def pause(self) -> None:
        self.stop(PAUSE)

    def cancel(self) -> None:
        self.stop(CANCEL)

    def check(self) -> None:
        if self._reason is not None:
            raise DownloadStopped(self._reason)

    def sleep(self, seconds: float) -> None:
        """Wait, but return at once when stopped."""
        self._wake.wait(seconds)
        self.check()

    @contextlib.contextmanager
    def watching(self, response: httpx2.Response) -> Any:
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        with self._lock:
            if sock is not None:
                self._sockets.add(sock)
        try:
            self.check()
            yield
        finally:
            with self._lock:
                if sock is not None:
                    self._sockets.discard(sock)


def partial_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".partial")


def state_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".partial.json")


def remove_partial(dest: Path) -> None:
    for path in (partial_path(dest), state_path(dest)):
        path.unlink(missing_ok=True)


def expected_checksum(file: HubFile) -> str:
    return file.sha256 or file.blob_id


def verify_existing(dest: Path, file: HubFile) -> bool:
    """True if ``dest`` is already this file: from the manifest, or hashed once and then recorded."""
    folder, checksum = dest.parent, expected_checksum(file)
    if manifest.is_verified(folder, dest.name, checksum):
        return True
    if not dest.is_file() or dest.stat().st_size != file.size:
        return False
    digest = new_hash(sha256=file.is_lfs, size=file.size)
    feed_from_disk(digest, dest, 0, file.size)
    if digest.hexdigest() != checksum:
        return False
    manifest.record(folder, dest.name, checksum=checksum)
    return True


class _Resume:
    """Offset and running hash of a partial file, and saving them as the download goes."""

    def __init__(self, dest: Path, file: HubFile) -> None:
        self.dest, self.file = dest, file
        self.part, self.state_file = partial_path(dest), state_path(dest)
        self.offset = 0
        self.digest: RunningHash = new_hash(sha256=file.is_lfs, size=file.size)
        self.hasher: BackgroundHash | None = None
        self.read_direct = False  # some bytes came through the socket fast path
        self._saved_at = (0, time.monotonic())

    def start_hashing(self) -> None:
        """From here on, chunks are hashed on a thread of their own (see :class:`BackgroundHash`)."""
        size = max(min(BUFFER_BYTES, self.file.size - self.offset), 64 * 1024)  # small files, small buffers
        self.hasher = BackgroundHash(self.digest, self.offset, buffers=max(HASH_LAG_BYTES // size, 2),
                                     buffer_bytes=size)

    def stop_hashing(self) -> None:
        if self.hasher is not None:
            self.hasher.close()
            self.hasher = None

    def load(self) -> None:
        """Pick up a partial file left by an earlier run (or start afresh if it is not this file)."""
        size_on_disk = self.part.stat().st_size if self.part.is_file() else 0
        state: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
        same_file = state.get("checksum", expected_checksum(self.file)) == expected_checksum(self.file)
        if not size_on_disk or not same_file or size_on_disk > self.file.size:
            self.reset()
            return
        saved_offset, saved_hash = state.get("offset", 0), state.get("hash_state")
        if saved_hash and 0 < saved_offset <= size_on_disk:
            self.digest = new_hash(sha256=self.file.is_lfs, size=self.file.size, state=bytes.fromhex(saved_hash))
            if self.digest.state() is None:  # no resumable hash here: rebuild it below
                self.digest, saved_offset = new_hash(sha256=self.file.is_lfs, size=self.file.size), 0
        else:
            saved_offset = 0
        feed_from_disk(self.digest, self.part, saved_offset, size_on_disk)
        self.offset = size_on_disk
        self.save()

    def reset(self) -> None:
        restart = self.hasher is not None
        self.stop_hashing()
        self.part.parent.mkdir(parents=True, exist_ok=True)
        with self.part.open("wb"):
            pass
        self.offset = 0
        self.digest = new_hash(sha256=self.file.is_lfs, size=self.file.size)
        self.save()
        if restart:
            self.start_hashing()

    def save(self) -> None:
        """Save the offset the hash has reached with its state (bytes beyond it are re-read on resume)."""
        offset, state = self.hasher.snapshot if self.hasher is not None else (self.offset, self.digest.state())
        data = {
            "checksum": expected_checksum(self.file), "size": self.file.size, "offset": offset,
            "hash_state": state.hex() if state is not None else None,
        }
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.state_file)
        self._saved_at = (self.offset, time.monotonic())

    def maybe_save(self) -> None:
        offset, when = self._saved_at
        if self.offset - offset >= CHECKPOINT_BYTES or time.monotonic() - when >= CHECKPOINT_SECONDS:
            self.save()


def _get_url(repo: str, commit: str, file: HubFile, headers: dict[str, str]) -> str:
    """Where to GET the bytes: the HEAD answer's location (a CDN for LFS files on the real Hub)."""
    url = session.file_url(repo, commit, file.path)
    meta = get_hf_file_metadata(url, headers=headers, timeout=SETTINGS.connect_timeout)
    if meta.etag and meta.etag not in (file.sha256, file.blob_id):
        raise ChecksumMismatch(
            f"{file.path} on the Hub is not the file listed for this commit (etag {meta.etag}); "
            "list the branch again and retry"
        )
    if urlparse(meta.location).netloc != urlparse(url).netloc:
        headers.pop("authorization", None)  # never send the token to a CDN
    return meta.location


def _stream_into(res: _Resume, fd: int, url: str, headers: dict[str, str], control: Control,
                 on_bytes: ProgressFn) -> None:
    """GET the bytes from ``res.offset`` on: receive into the hasher's buffers, write, hash on its thread."""
    request_headers = dict(headers)
    if res.offset:
        request_headers["Range"] = f"bytes={res.offset}-"
    timeout = httpx2.Timeout(SETTINGS.connect_timeout, read=SETTINGS.read_timeout)
    with session.client().stream("GET", url, headers=request_headers, timeout=timeout) as response, \
            control.watching(response):
        hf_raise_for_status(response)
        if res.offset and response.status_code != 206:  # range ignored: start over
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            res.reset()
        reader = BodyReader(response, SETTINGS.read_timeout)
        assert res.hasher is not None
        try:
            while res.offset < res.file.size:
                if not _fill_one_buffer(res, res.hasher, reader, fd, control, on_bytes):
                    break
        finally:
            res.read_direct = res.read_direct or reader.socket_bytes > 0


def _fill_one_buffer(res: _Resume, hasher: BackgroundHash, reader: BodyReader, fd: int, control: Control,
                     on_bytes: ProgressFn) -> bool:
    """Receive into one of the hasher's buffers, writing each read at once (a kill loses nothing
    received); hand what was filled to the hasher, even on failure. False when the body ended."""
    buffer = hasher.buffer()
    view = memoryview(buffer)[: res.file.size - res.offset]
    filled = 0
    try:
        while filled < len(view):
            control.check()
            got = reader.read_some(view[filled:])
            if not got:
                return False
            disk.write_all(fd, view[filled:filled + got])
            filled += got
            res.offset += got
            on_bytes(got)
            res.maybe_save()
        return True
    finally:
        if filled:
            hasher.submit(buffer, filled)
        else:
            hasher.give_back(buffer)


def download_file(repo: str, commit: str, file: HubFile, dest: Path, control: Control,
                  on_bytes: ProgressFn) -> Path:
    """Fetch ``file`` to ``dest``; ``on_bytes(n)`` reports bytes on disk (the resumed part first).

    Raises DownloadStopped on pause/cancel (a cancel removes the partial file), ChecksumMismatch
    (bad bytes removed), or another HubError with the reason.
    """
    control.check()
    if verify_existing(dest, file):
        on_bytes(file.size)
        return dest
    if hf_cache.reuse_cached(repo, file, dest) is not None:  # already in the Hugging Face cache
        remove_partial(dest)
        on_bytes(file.size)
        return dest
    res = _Resume(dest, file)
    res.load()
    if res.offset:
        on_bytes(res.offset)
    disk.ensure_space(dest.parent, file.size - res.offset, file.path)
    fd = os.open(res.part, os.O_WRONLY | getattr(os, "O_BINARY", 0))
    failures = 0
    res.start_hashing()
    try:
        os.lseek(fd, res.offset, os.SEEK_SET)
        while res.offset < file.size:
            control.check()
            before = res.offset
            headers = session.headers()
            try:
                url = _get_url(repo, commit, file, headers)
                _stream_into(res, fd, url, headers, control, on_bytes)
                if res.offset < file.size:
                    raise httpx2.RemoteProtocolError("the server closed the connection early")
            except (httpx2.TransportError, HubServerError, OSError) as exc:
                control.check()
                if is_disk_full(exc):
                    raise
                status = getattr(getattr(exc, "response", None), "status_code", None)
                if status is not None and status < 500 and status != 429:
                    raise
                failures = 0 if res.offset > before else failures + 1
                if failures > SETTINGS.retries:
                    raise
                res.save()
                control.sleep(SETTINGS.backoff * min(2 ** (failures - 1), 8) if failures else 0)
    except DownloadStopped as stop:
        os.close(fd)
        fd = -1
        res.stop_hashing()
        if stop.reason == CANCEL:
            remove_partial(dest)
        else:
            res.save()
        raise
    except Exception as exc:
        res.stop_hashing()
        with contextlib.suppress(OSError):
            os.ftruncate(fd, res.offset)
            res.save()
        raise translate(exc, repo=repo, revision=commit, path=file.path, endpoint=session.endpoint()) from None
    finally:
        if fd >= 0:
            os.close(fd)
    res.stop_hashing()
    try:
        return _finish(res)
    except ChecksumMismatch:
        if not res.read_direct or not receive.direct_enabled():
            raise
    # The bytes read straight from the socket were wrong: read everything through httpx2 from now on
    # and fetch this file once more (the bad bytes are gone already).
    receive.turn_direct_off()
    return download_file(repo, commit, file, dest, control, _restarted(on_bytes, res.offset))


def _restarted(on_bytes: ProgressFn, discarded: int) -> ProgressFn:
    """Progress for a fresh second try: the ``discarded`` bytes already reported count again, so the
    caller's total does not pass 100 %: report nothing until the new bytes pass them."""
    owed = [discarded]

    def report(n: int) -> None:
        skip = min(owed[0], n)
        owed[0] -= skip
        if n - skip:
            on_bytes(n - skip)

    return report


def _finish(res: _Resume) -> Path:
    got, want = res.digest.hexdigest(), expected_checksum(res.file)
    if got != want:
        remove_partial(res.dest)
        kind = "sha256" if res.file.is_lfs else "git checksum"
        raise ChecksumMismatch(
            f"{res.file.path} arrived corrupted (its {kind} is {got[:12]}…, the Hub says {want[:12]}…); "
            "the bad bytes were deleted: download it again"
        )
    os.replace(res.part, res.dest)
    res.state_file.unlink(missing_ok=True)
    manifest.record(res.dest.parent, res.dest.name, checksum=want)
    return res.dest
