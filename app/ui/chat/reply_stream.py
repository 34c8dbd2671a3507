"""A reply on screen: asked of the engine, shown as it streams (at most once a frame), stopped with a grace
period, and finished into the conversation (complete, stopped or error)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from PySide6.QtCore import QObject, QTimer, Signal

from app.chats.records import StoredMessage
from app.conversation.conversation import Reply
from app.engine.protocol import GenerationStats, SamplingSettings
from app.ui.chat.conversation_view import ConversationView
from app.ui.chat.messages import MessageListModel
from app.ui.engine.engine_link import EngineLink

FRAME_MS = 16  # streaming text reaches the screen at most once per frame
STOP_GRACE_MS = 3000  # a worker that does not confirm a stop in this time: the reply is closed anyway
MAX_RENDER_WAIT_S = 0.25


class ReplyStream(QObject):
    """The reply in progress between the engine link, the conversation's :class:`Reply` and the view.

    Signals:
        started(): a reply is streaming.
        finished(object): the reply ended; its saved StoredMessage.
        threads(str): how the worker used the CPU for the reply (shown by the model bar).
    """

    started = Signal()
    finished = Signal(object)
    threads = Signal(str)

    def __init__(self, engine: EngineLink, messages: MessageListModel, view: ConversationView,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine, self.messages, self.view = engine, messages, view
        self.request_id: int | None = None
        self.reply: Reply | None = None
        self.stopping = False
        self._unshown = False  # text in the reply that the view does not show yet
        self._render_after = 0.0
        self.frame_timer = QTimer(self, interval=FRAME_MS)
        self.frame_timer.timeout.connect(self._show_pending)
        engine.tokens.connect(self._tokens)
        engine.done.connect(self._done)
        engine.failed.connect(self._failed)

    @property
    def generating(self) -> bool:
        return self.request_id is not None

    def start(self, reply: Reply, prompt: str, stop: Sequence[str], sampling: SamplingSettings,
              chat_id: str, *, continuing: bool = False) -> None:
        """Show ``reply`` (a new row, or the continued one streaming again) and ask the engine for it."""
        if continuing:
            self.messages.update_message(reply.message_id, status="streaming")
        else:
            self.messages.append(reply.message)
        self.reply = reply
        self.messages.live_id = reply.message_id
        self._unshown = False
        self.request_id = self.engine.generate(prompt, stop, sampling, chat_id)
        self.frame_timer.start()
        self.started.emit()

    def stop(self) -> None:
        """Stop the reply: the worker stops at once and reports Done, which finishes it.

        If no answer comes (a hung worker), the reply is closed as stopped anyway.
        """
        request = self.request_id
        if request is None or self.stopping:
            return
        self.stopping = True
        self.engine.stop(request)
        QTimer.singleShot(STOP_GRACE_MS, lambda: self._stop_overdue(request))

    def end(self) -> None:
        """Leaving the chat mid-reply: stop it and save it as stopped right away."""
        request = self.request_id
        if request is not None:
            self.engine.stop(request)
            self._finish("stopped", None)

    def _stop_overdue(self, request: int) -> None:
        if self.request_id == request:
            self._finish("stopped", None)

    def _tokens(self, request_id: int, text: str) -> None:
        # The engine controller already batched the tokens (once a frame): they go to the reply as
        # they come; the view catches up in _show_pending.
        if request_id == self.request_id and self.reply is not None:
            self.reply.append(text)
            self._unshown = True

    def _show_pending(self) -> None:
        """Once a frame: show the text that arrived (the reply's writer saves it in batches).

        Laying out a long reply costs more as it grows; after an expensive update the next
        one waits twice as long, so the GUI always keeps most of its time for the user.
        """
        if self.reply is None:
            return
        writer = self.reply.writer
        now = time.monotonic()
        if self._unshown and now >= self._render_after:
            self._unshown = False
            self.messages.update_message(writer.message_id, content=writer.text)
            self._grew(writer.message_id)
            cost = time.monotonic() - now
            self._render_after = now + min(MAX_RENDER_WAIT_S, 2 * cost)
        writer.flush_if_due()

    def _grew(self, message_id: int) -> None:
        row = self.messages.row_of(message_id)
        if row is not None:
            self.view.row_grew(row)

    def _finish(self, status: str, stats: GenerationStats | None) -> None:
        reply = self.reply
        self.frame_timer.stop()
        self.reply = None
        self.request_id = None
        self.stopping = False
        message: StoredMessage | None = None
        if reply is not None:
            self._unshown = False
            message = reply.finish(status, stats)
            self.messages.live_id = None
            self.messages.update_message(message.id, content=message.content, status=status,
                                         tokens=message.tokens, tokens_per_s=message.tokens_per_s)
            self._grew(message.id)
        self.finished.emit(message)

    def _done(self, request_id: int, stats: GenerationStats) -> None:
        if request_id != self.request_id:
            return
        stopped = self.stopping or stats.stop_reason == "stopped"
        if stats.threads is not None:
            self.threads.emit(stats.threads.describe())
        self._finish("stopped" if stopped else "complete", stats)

    def _failed(self, request_id: int, _message: str) -> None:
        if self.request_id is not None and request_id in (self.request_id, -1):
            self._finish("error", None)
