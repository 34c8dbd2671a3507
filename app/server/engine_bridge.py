"""The server's one seam onto Hearth's engine: which models it serves, loading them, and queued replies.

Everything the API server needs from the engine goes through here (``EngineClient``,
``resolve_chat_format``, ``plan_load``, the model lookup), so moving onto a new engine core
touches this module only. Prompts are built by the conversation core's rules
(:func:`app.conversation.prompt.request_prompt`), the window's and ``hearth chat``'s.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from app.catalog import load_catalog
from app.catalog.model import Catalog
from app.conversation.prompt import request_prompt
from app.engine.chat_format import ChatFormat, resolve_chat_format
from app.engine.chat_session import plan_load, sampling_for
from app.engine.client import EngineClient
from app.engine.protocol import (
    Crashed,
    Done,
    EngineError,
    Error,
    Event,
    GenerationStats,
    Loaded,
    ModelInfo,
    SamplingSettings,
    Tokens,
)
from app.errors import HearthError
from app.formats.gguf_meta import read_gguf_metadata
from app.library.installed import resolve_model_path
from app.templates.prompt import Message, TemplateError

__all__ = ["EngineBridge", "EngineBusy", "EngineError", "GenerationStats", "Message", "SamplingSettings",
           "ServedModel", "TemplateError", "Turn", "UnknownModel", "conversation_id"]

STOP_WAIT_S = 30.0  # after a hang-up, how long to wait for the worker to confirm the stop


class UnknownModel(HearthError):
    """The request names a model this server does not have."""


class EngineBusy(HearthError):
    """Too many requests are already waiting for the engine."""


@dataclass(frozen=True)
class ServedModel:
    """A model the server can answer with: its API id and the GGUF file behind it."""

    id: str
    path: Path
    created: int


def conversation_id(model_id: str, messages: Sequence[Message]) -> str:
    """A stable id for one client conversation: its model and messages up to the first user turn.

    Every later request of the same conversation repeats that prefix, so it lands on the same
    saved KV state in the worker and only the new tokens are evaluated.
    """
    head: list[tuple[str, str]] = []
    for message in messages:
        head.append((message.role, message.content))
        if message.role == "user":
            break
    digest = hashlib.sha256(json.dumps([model_id, head]).encode()).hexdigest()[:16]
    return f"api-{digest}"


class Turn:
    """One request's hold on the engine; releasing it twice is harmless."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock: asyncio.Lock | None = lock

    def release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()


class EngineBridge:
    """One engine worker for the server: requests take turns on it (FIFO), one model at a time.

    Call :meth:`preload` before serving (blocking); the async methods run on the server's loop.
    """

    def __init__(self, *, catalog: Catalog | None = None, models_dir: Path | None = None,
                 load_options: Mapping[str, Any] | None = None, max_queue: int = 16) -> None:
        self.catalog = catalog or load_catalog()
        self.models_dir = models_dir
        self.load_options = dict(load_options or {})
        self.max_queue = max_queue
        self._files: dict[str, ServedModel] = {}  # models named on the command line
        self._loaded: ServedModel | None = None
        self._format: ChatFormat | None = None
        self.info: ModelInfo | None = None
        self._lock: asyncio.Lock | None = None
        self._waiting = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._active: asyncio.Queue[Event] | None = None
        self._load_done = threading.Event()
        self._load_event: Event | None = None
        self._client = EngineClient(on_event=self._on_event)

    # ---- models --------------------------------------------------------------------------

    def _served(self, ident: str, path: Path) -> ServedModel:
        try:
            created = int(path.stat().st_mtime)
        except OSError:
            created = int(time.time())
        return ServedModel(ident, path, created)

    def add_model(self, model: str) -> ServedModel:
        """Serve MODEL (a catalogue id or a ``.gguf`` path) as well; its API id is returned."""
        path = resolve_model_path(model, self.catalog, self.models_dir)
        ident = path.stem if model.endswith(".gguf") or Path(model).exists() else model
        served = self._served(ident, path)
        self._files[ident] = served
        return served

    def models(self) -> list[ServedModel]:
        """The loaded model first, then the other installed ones (each loads on demand)."""
        found: dict[str, ServedModel] = {}
        if self._loaded is not None:
            found[self._loaded.id] = self._loaded
        found.update({k: v for k, v in self._files.items() if k not in found})
        for entry in self.catalog.models:
            if entry.id in found:
                continue
            try:
                path = resolve_model_path(entry.id, self.catalog, self.models_dir)
            except HearthError:
                continue
            found[entry.id] = self._served(entry.id, path)
        return list(found.values())

    def find(self, ident: str | None) -> ServedModel:
        """The model a request names (the loaded one when it names none); UnknownModel if absent."""
        if not ident:
            if self._loaded is not None:
                return self._loaded
            raise UnknownModel("no model is loaded: name one in the request's \"model\" field "
                               "(see GET /v1/models)")
        if self._loaded is not None and ident == self._loaded.id:
            return self._loaded
        for served in self.models():
            if served.id == ident:
                return served
        known = ", ".join(m.id for m in self.models()) or "none installed"
        raise UnknownModel(f"the model {ident!r} does not exist on this server (available: {known})")

    @property
    def loaded(self) -> ServedModel | None:
        return self._loaded

    @property
    def chat_format(self) -> ChatFormat | None:
        return self._format

    # ---- loading -------------------------------------------------------------------------

    def preload(self, model: str, timeout: float = 600.0) -> ServedModel:
        """Add MODEL and load it now (blocking): ``hearth serve --model``."""
        served = self.add_model(model)
        self._load_blocking(served, timeout)
        return served

    def _load_blocking(self, served: ServedModel, timeout: float = 600.0) -> None:
        if self._loaded is not None and self._loaded.path == served.path:
            return
        meta = read_gguf_metadata(served.path)
        chat_format = resolve_chat_format(served.path, self.catalog, models_dir=self.models_dir, meta=meta)
        settings, _plan = plan_load(served.path, meta, **self.load_options)
        self._loaded = self._format = self.info = None
        self._load_done.clear()
        self._client.load(settings)
        if not self._load_done.wait(timeout):
            raise EngineError(f"{served.id} did not load within {timeout:.0f} s", "load")
        event = self._load_event
        if isinstance(event, Loaded):
            self._loaded, self._format, self.info = served, chat_format, event.info
            return
        message = event.message if isinstance(event, Error | Crashed) else "the engine did not answer"
        raise EngineError(f"{served.id} could not be loaded: {message}", "load")

    # ---- events from the worker (reader thread) ------------------------------------------

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Loaded) or (isinstance(event, Error) and event.request_id is None):
            self._load_event = event
            self._load_done.set()
            return
        if isinstance(event, Crashed):
            self._loaded = self._format = self.info = None
            self._load_event = event
            self._load_done.set()
        queue, loop = self._active, self._loop
        if queue is not None and loop is not None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

    # ---- replies -------------------------------------------------------------------------

    def sampling(self, overrides: Mapping[str, Any]) -> SamplingSettings:
        """The loaded model's catalogue sampling defaults, then the request's values."""
        model = self._format.model if self._format is not None else None
        return sampling_for(model, **overrides)

    def render(self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]] | None = None) -> str:
        """The exact prompt the window would build for these messages (tools passed to the template)."""
        assert self._format is not None
        return request_prompt(self._format, messages, tools)

    def supports_tools(self) -> bool:
        """Whether the loaded model's template renders a ``tools`` list."""
        template = self._format.template if self._format is not None else None
        return template is not None and template.dialect == "transformers" and "tools" in template.jinja

    def stops(self) -> tuple[str, ...]:
        """The loaded model's own stop strings (its template's end-of-turn markers)."""
        return self._format.stop if self._format is not None else ()

    async def acquire(self, served: ServedModel) -> Turn:
        """Wait for this request's turn on the engine and make sure ``served`` is loaded.

        More than ``max_queue`` waiting requests: EngineBusy. The caller releases the turn.
        """
        self._loop = asyncio.get_running_loop()
        if self._lock is None:
            self._lock = asyncio.Lock()
        lock = self._lock
        if self._waiting >= self.max_queue:
            raise EngineBusy(f"the server is busy ({self._waiting} requests are waiting): try again shortly")
        self._waiting += 1
        try:
            await lock.acquire()
        finally:
            self._waiting -= 1
        turn = Turn(lock)
        try:
            if self._loaded is None or self._loaded.path != served.path:
                await anyio.to_thread.run_sync(self._load_blocking, served)
        except BaseException:
            turn.release()
            raise
        return turn

    @property
    def waiting(self) -> int:
        return self._waiting

    async def stream(self, prompt: str, stop: Sequence[str], sampling: SamplingSettings,
                     chat_id: str) -> AsyncIterator[str | GenerationStats]:
        """Yield reply text, then the GenerationStats; call between :meth:`acquire` and :meth:`release`.

        Leaving early (a client that hung up) stops the reply in the worker at once and waits
        for the worker to confirm, so the next request never sees this one's tokens.
        """
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        # Routed before sending, so no event of this request arrives unrouted; the request
        # holds the engine alone, and events of any other request id are dropped below.
        self._active = queue
        request_id = -1
        finished = False
        try:
            request_id = self._client.generate(prompt, stop, sampling, chat_id)
            while not finished:
                event = await queue.get()
                if isinstance(event, Tokens | Done | Error) and event.request_id != request_id:
                    continue
                if isinstance(event, Tokens):
                    if event.text:
                        yield event.text
                elif isinstance(event, Done):
                    finished = True
                    yield event.stats
                elif isinstance(event, Error):
                    finished = True
                    raise EngineError(event.message, event.kind)
                elif isinstance(event, Crashed):
                    finished = True
                    raise EngineError(event.message, "generate")
        finally:
            if not finished and request_id > 0:
                self._client.stop(request_id)
                with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_WAIT_S):
                    while True:
                        event = await queue.get()
                        if isinstance(event, Crashed) or (
                                isinstance(event, Done | Error) and event.request_id == request_id):
                            break
            self._active = None

    def close(self) -> None:
        self._client.close()
