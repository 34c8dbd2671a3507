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
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx2
from huggingface_hub import get_hf_file_metadata
from huggingface_hub.utils import hf_raise_for_status

from app.hub import disk, hf_cache, limits, manifest, nofollow, receive, resume_state, session
from app.hub.entries import shown
from app.hub.errors import ChecksumMismatch, DownloadStopped, HubServerError, HubTimeout, is_disk_full, translate
from app.hub.hashing import BackgroundHash, RunningHash, feed_from_disk, new_hash, sha256_state_fits
from app.hub.listing import HubFile, within_deadline
from app.hub.receive import BodyReader
from app.hub.replies import Throughput, check_body

log = logging.getLogger(__name__)

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
    """Timeouts, retries and the pace rules; tests shorten them (the last three also from the
    environment, see :mod:`app.hub.limits`)."""

    read_timeout: float = 30.0
    connect_timeout: float = 15.0
    retries: int = 5
    backoff: float = 1.0
    head_deadline: float = field(default_factory=lambda: limits.hub_deadline(30.0))
    min_rate: float = field(default_factory=limits.min_rate)
    rate_window: float = field(default_factory=limits.rate_window)


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


def _place(dest: Path, folder: Path | None) -> tuple[Path, str]:
    """The manifest folder and the name ``dest`` has in it (its path under ``folder``)."""
    if folder is None:
        return dest.parent, dest.name
    return folder, dest.relative_to(folder).as_posix()


def verify_existing(dest: Path, file: HubFile, folder: Path | None = None) -> bool:
    """True if ``dest`` is already this file: from the manifest, or hashed once and then recorded."""
    where, name = _place(dest, folder)
    checksum = expected_checksum(file)
    if nofollow.kind(dest) != "file":  # missing, or a link/folder: never trusted as the file
        return False
    if manifest.is_verified(where, name, checksum):
        return True
    if dest.stat().st_size != file.size:
        return False
    digest = new_hash(sha256=file.is_lfs, size=file.size)
    feed_from_disk(digest, dest, 0, file.size)
    if digest.hexdigest() != checksum:
        return False
    manifest.record(where, name, checksum=checksum)
    return True


def _set_aside(path: Path) -> Path:
    """Rename something in the way of a partial or state file to a free ``NAME.stale-N`` beside it."""
    for number in range(1, 1000):
        aside = path.with_name(f"{path.name}.stale-{number}")
        if nofollow.kind(aside) == "missing":
            os.replace(path, aside)
            return aside
    raise OSError(f"cannot move {path} out of the way")


class _Resume:
    """Offset and running hash of a partial file, and saving them as the download goes."""

    def __init__(self, dest: Path, file: HubFile) -> None:
        self.dest, self.file = dest, file
        self.part, self.state_file = partial_path(dest), state_path(dest)
        self.offset = 0
        self.digest: RunningHash = new_hash(sha256=file.is_lfs, size=file.size)
        self.hasher: BackgroundHash | None = None
        self.notices: list[str] = []
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

    def _notice(self, text: str) -> None:
        log.warning("%s", text)
        self.notices.append(text)

    def _clear_odd(self, path: Path, what: str) -> bool:
        """Links are refused; a folder or other odd thing in the way is set aside. True when one was."""
        found = nofollow.kind(path)
        if found == "link":
            raise nofollow.refused(path)
        if found in ("dir", "other"):
            aside = _set_aside(path)
            self._notice(f"{shown(self.file.path)}: its {what} was a {'folder' if found == 'dir' else 'special file'}, "
                         f"moved to {aside.name}; downloading that file again")
            return True
        return False

    def load(self) -> None:
        """Pick up a partial file left by an earlier run (or start afresh if it is not this file)."""
        odd_part = self._clear_odd(self.part, "partial file")
        odd_state = self._clear_odd(self.state_file, "resume state")
        if odd_part or odd_state:
            self.reset()
            return
        size_on_disk = os.lstat(self.part).st_size if nofollow.kind(self.part) == "file" else 0
        want = expected_checksum(self.file)
        state: resume_state.SavedState | None = resume_state.SavedState(None, None, 0, None)
        try:
            raw = nofollow.read_bytes(self.state_file)
            if raw is not None:
                state = resume_state.check(resume_state.parse(raw), checksum=want, size=self.file.size,
                                           on_disk=size_on_disk)
                if state is not None and state.hash_state and self.file.is_lfs and \
                        not sha256_state_fits(state.hash_state, state.offset):
                    raise resume_state.Corrupt("its hash state does not match its offset")
        except (resume_state.Corrupt, ValueError) as exc:
            if size_on_disk:
                self._notice(f"{shown(self.file.path)}: the saved resume state is unusable ({exc}); "
                             "downloading that file again from the start")
            self.reset()
            return
        if state is None or not size_on_disk or size_on_disk > self.file.size:
            self.reset()
            return
        saved_offset, saved_hash = state.offset, state.hash_state
        if saved_hash and 0 < saved_offset <= size_on_disk:
            self.digest = new_hash(sha256=self.file.is_lfs, size=self.file.size, state=saved_hash)
            if self.digest.state() is None or self.digest.state() != saved_hash:  # not resumable: rebuild
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
        os.close(nofollow.open_fd(self.part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
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
        nofollow.replace_text(self.state_file, json.dumps(data))
        self._saved_at = (self.offset, time.monotonic())

    def maybe_save(self) -> None:
        offset, when = self._saved_at
        if self.offset - offset >= CHECKPOINT_BYTES or time.monotonic() - when >= CHECKPOINT_SECONDS:
            self.save()


def _get_url(repo: str, commit: str, file: HubFile, headers: dict[str, str]) -> str:
    """Where to GET the bytes: the HEAD answer's location (a CDN for LFS files on the real Hub)."""
    url = session.file_url(repo, commit, file.path)
    try:  # one total deadline: a HEAD answered a byte a second must not hang the download
        meta = within_deadline(
            lambda: get_hf_file_metadata(url, headers=headers, timeout=SETTINGS.connect_timeout),
            SETTINGS.head_deadline, f"asking for {shown(file.path)}")
    except HubTimeout as exc:
        raise httpx2.ReadTimeout(str(exc)) from None  # retried like any stall, within the pace rule
    if meta.etag and meta.etag not in (file.sha256, file.blob_id):
        raise ChecksumMismatch(
            f"{shown(file.path)} on the Hub is not the file listed for this commit (etag {shown(meta.etag, 20)}); "
            "list the branch again and retry"
        )
    if urlparse(meta.location).netloc != urlparse(url).netloc:
        headers.pop("authorization", None)  # never send the token to a CDN
    return meta.location


def _stream_into(res: _Resume, fd: int, url: str, headers: dict[str, str], control: Control,
                 on_bytes: ProgressFn, pace: Throughput) -> None:
    """GET the bytes from ``res.offset`` on: receive into the hasher's buffers, write, hash on its thread."""
    request_headers = dict(headers)
    if res.offset:
        request_headers["Range"] = f"bytes={res.offset}-"
    timeout = httpx2.Timeout(SETTINGS.connect_timeout, read=SETTINGS.read_timeout)
    with session.client().stream("GET", url, headers=request_headers, timeout=timeout) as response, \
            control.watching(response):
        hf_raise_for_status(response)
        if not check_body(response.status_code, response.headers, res.offset, res.file.size, res.file.path):
            os.ftruncate(fd, 0)  # range ignored, the whole file came: start over
            os.lseek(fd, 0, os.SEEK_SET)
            res.reset()
        reader = BodyReader(response, SETTINGS.read_timeout)
        assert res.hasher is not None
        try:
            while res.offset < res.file.size:
                if not _fill_one_buffer(res, res.hasher, reader, fd, control, on_bytes, pace):
                    break
        finally:
            res.read_direct = res.read_direct or reader.socket_bytes > 0


def _fill_one_buffer(res: _Resume, hasher: BackgroundHash, reader: BodyReader, fd: int, control: Control,
                     on_bytes: ProgressFn, pace: Throughput) -> bool:
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
            pace.add(got)
            res.maybe_save()
            pace.check()
        return True
    finally:
        if filled:
            hasher.submit(buffer, filled)
        else:
            hasher.give_back(buffer)


def download_file(repo: str, commit: str, file: HubFile, dest: Path, control: Control,
                  on_bytes: ProgressFn, folder: Path | None = None,
                  on_notice: Callable[[str], None] | None = None) -> Path:
    """Fetch ``file`` to ``dest``; ``on_bytes(n)`` reports bytes on disk (the resumed part first).

    ``folder`` is the download folder whose manifest records the file (by its path under it);
    by default ``dest``'s own folder. ``on_notice`` hears what the user should know (a resume
    state that was unusable, so the file starts again); it is logged as a warning too. Raises
    DownloadStopped on pause/cancel (a cancel removes the partial file), ChecksumMismatch (bad
    bytes removed), or another HubError with the reason.
    """
    control.check()
    if verify_existing(dest, file, folder):
        on_bytes(file.size)
        return dest
    if hf_cache.reuse_cached(repo, file, dest, folder) is not None:  # already in the Hugging Face cache
        remove_partial(dest)
        on_bytes(file.size)
        return dest
    res = _Resume(dest, file)
    res.load()
    for text in res.notices:
        if on_notice is not None:
            on_notice(text)
    if res.offset:
        on_bytes(res.offset)
    disk.ensure_space(dest.parent, file.size - res.offset, file.path)
    fd = nofollow.open_fd(res.part, os.O_WRONLY)
    failures = 0
    pace = Throughput(file.path, SETTINGS.min_rate, SETTINGS.rate_window)
    res.start_hashing()
    try:
        os.lseek(fd, res.offset, os.SEEK_SET)
        while res.offset < file.size:
            control.check()
            pace.check()
            before = res.offset
            headers = session.headers()
            try:
                url = _get_url(repo, commit, file, headers)
                _stream_into(res, fd, url, headers, control, on_bytes, pace)
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
                pace.check()
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
        return _finish(res, folder)
    except ChecksumMismatch:
        if not res.read_direct or not receive.direct_enabled():
            raise
    # The bytes read straight from the socket were wrong: read everything through httpx2 from now on
    # and fetch this file once more (the bad bytes are gone already).
    receive.turn_direct_off()
    return download_file(repo, commit, file, dest, control, _restarted(on_bytes, res.offset), folder, on_notice)


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


def _finish(res: _Resume, folder: Path | None = None) -> Path:
    got, want = res.digest.hexdigest(), expected_checksum(res.file)
    if got != want:
        remove_partial(res.dest)
        kind = "sha256" if res.file.is_lfs else "git checksum"
        raise ChecksumMismatch(
            f"{shown(res.file.path)} arrived corrupted (its {kind} is {got[:12]}…, the Hub says {want[:12]}…); "
            "the bad bytes were deleted: download it again"
        )
    os.replace(res.part, res.dest)
    res.state_file.unlink(missing_ok=True)
    where, name = _place(res.dest, folder)
    manifest.record(where, name, checksum=want)
    return res.dest
