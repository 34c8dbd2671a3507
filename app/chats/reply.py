"""Saving a reply while it streams: batched writes, so a crash loses at most the last second."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from app.chats.store import ChatStore, ChatStoreError

FLUSH_INTERVAL_S = 0.5


class ReplyWriter:
    """Grows one stored assistant message, writing at most one transaction per interval.

    ``append`` writes when the interval has passed; with ``background=True`` a thread also
    writes text that has waited an interval, so a model that stalls mid-reply loses nothing
    either. ``finish`` writes the rest and the final status.

    A write that fails (a full disk) raises ChatStoreError, or with ``on_error`` is passed to it
    (on the caller's thread) and tried again an interval later; the text is kept in memory.
    """

    def __init__(
        self,
        store: ChatStore,
        message_id: int,
        *,
        text: str = "",
        interval: float = FLUSH_INTERVAL_S,
        background: bool = False,
        on_error: Callable[[ChatStoreError], None] | None = None,
    ) -> None:
        self.store = store
        self.on_error = on_error
        self.message_id = message_id
        self.interval = interval
        self._text = text
        self._saved = text
        self._pieces = 0
        self._last_write = time.monotonic()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(
                target=self._flush_loop, name="reply-writer", daemon=True
            )
            self._thread.start()

    @property
    def text(self) -> str:
        return self._text

    @property
    def pieces(self) -> int:
        """How many pieces were appended (one per token when fed token by token)."""
        return self._pieces

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def append(self, piece: str) -> None:
        with self._lock:
            self._text += piece
            self._pieces += 1
        self.flush_if_due()

    def replace(self, text: str) -> None:
        """Set the whole text (a renderer that trimmed a stop string, say)."""
        with self._lock:
            self._text = text
        self.flush_if_due()

    def flush_if_due(self) -> None:
        if time.monotonic() - self._last_write >= self.interval:
            self.flush()

    def flush(self, *, report: bool = True) -> None:
        """Write the text now if it changed since the last write."""
        with self._lock:
            if self._text == self._saved or self._done.is_set():
                self._last_write = time.monotonic()
                return
            text = self._text
            try:
                self.store.update_message(self.message_id, content=text)
            except ChatStoreError as exc:
                self._last_write = time.monotonic()  # try again an interval later, not per piece
                failure: ChatStoreError | None = exc
            else:
                failure = None
                self._saved = text
                self._last_write = time.monotonic()
        if failure is not None:
            self._report(failure, report)

    def _report(self, failure: ChatStoreError, report: bool) -> None:
        if self.on_error is None or not report:
            raise failure
        self.on_error(failure)

    def finish(
        self,
        status: str = "complete",
        *,
        tokens: int | None = None,
        tokens_per_s: float | None = None,
    ) -> None:
        """Write the whole reply with its final status; later appends are ignored."""
        with self._lock:
            if self._done.is_set():
                return
            self._done.set()
            try:
                self.store.update_message(
                    self.message_id, content=self._text, status=status,
                    tokens=tokens if tokens is not None else self._pieces, tokens_per_s=tokens_per_s,
                )
                failure: ChatStoreError | None = None
                self._saved = self._text
            except ChatStoreError as exc:
                failure = exc  # the row stays "streaming": the next start marks it interrupted
        if failure is not None:
            self._report(failure, True)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * self.interval + 1)

    def _flush_loop(self) -> None:
        while not self._done.wait(self.interval / 2):
            # A failed background write is retried, and reported by the next foreground one.
            with contextlib.suppress(Exception):
                if time.monotonic() - self._last_write >= self.interval:
                    self.flush(report=False)
