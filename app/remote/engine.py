"""A remote engine: an OpenAI-compatible endpoint behind the same methods and events as the local worker.

``load``/``generate``/``stop``/``unload``/``close`` and the blocking ``load_model``/``stream``
match :class:`app.engine.client.EngineClient`, so a chat window or ``hearth chat`` drives either.
Replies go through ``/v1/chat/completions`` when the caller passes the messages (the server
applies its own template), else through ``/v1/completions`` with the prompt.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx2 as httpx

from app.engine.protocol import (
    Done,
    EngineError,
    Error,
    Event,
    GenerationStats,
    Loaded,
    LoadSettings,
    ModelInfo,
    SamplingSettings,
    StopReason,
    Tokens,
    Unloaded,
)
from app.remote.endpoints import Endpoint
from app.remote.messages import decode_messages
from app.templates.prompt import Message

EventHandler = Callable[[Event], None]
_REASONS: dict[str, StopReason] = {"stop": "eos", "length": "max_tokens", "tool_calls": "eos",
                                   "content_filter": "eos"}


def _server_error(response: httpx.Response) -> str:
    """The message in an OpenAI-shaped error body, else the start of the body."""
    try:
        body = json.loads(response.read() or b"{}")
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:300]
        if isinstance(body.get("detail"), str):
            return body["detail"][:300]
    return (response.text or response.reason_phrase)[:200].strip()


class RemoteEngine:
    """Talk to ``endpoint``; events go to ``on_event`` (a reader thread) or queue for the blocking helpers."""

    def __init__(self, endpoint: Endpoint, on_event: EventHandler | None = None, *,
                 connect_timeout: float = 10.0, read_timeout: float = 120.0) -> None:
        self.endpoint = endpoint
        self.on_event = on_event
        self.events: queue.Queue[Event] = queue.Queue()
        self.model: ModelInfo | None = None
        self.last_stats: GenerationStats | None = None
        self.crashes = 0
        self._ids = itertools.count(1)
        self._last_request = 0
        self._stopped: set[int] = set()
        self._responses: dict[int, httpx.Response] = {}
        self._lock = threading.Lock()
        self.read_timeout = read_timeout
        headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        self._http = httpx.Client(base_url=endpoint.base_url, headers=headers,
                                  timeout=httpx.Timeout(read_timeout, connect=connect_timeout))

    @property
    def pid(self) -> int | None:
        return None

    # ---- plumbing ------------------------------------------------------------------------

    def _deliver(self, event: Event) -> None:
        if isinstance(event, Loaded):
            self.model = event.info
        elif isinstance(event, Done):
            self.last_stats = event.stats
        if self.on_event is not None:
            self.on_event(event)
        else:
            self.events.put(event)

    def _explain(self, exc: Exception, doing: str) -> str:
        """One line for a failed exchange with the endpoint (its key never appears)."""
        where = f"{self.endpoint.name} ({self.endpoint.base_url})"
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return f"cannot reach {where} while {doing}: is the server running and the address right?"
        if isinstance(exc, httpx.TimeoutException):
            return f"{where} did not answer for {self.read_timeout:.0f} s while {doing}; try again later"
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return f"the connection to {where} dropped while {doing}"
        if isinstance(exc, httpx.HTTPError):
            return f"the exchange with {where} failed while {doing} ({type(exc).__name__})"
        return f"{where}: {exc}"

    def _check(self, response: httpx.Response, doing: str) -> None:
        if response.status_code >= 400:
            hint = " (check the endpoint's API key)" if response.status_code in (401, 403) else ""
            raise EngineError(f"{self.endpoint.name} answered {response.status_code} while {doing}: "
                              f"{_server_error(response)}{hint}")

    # ---- models --------------------------------------------------------------------------

    def list_models(self) -> list[str]:
        """The endpoint's model ids (GET /v1/models); EngineError with one clear line if it fails."""
        try:
            response = self._http.get("/models")
        except httpx.HTTPError as exc:
            raise EngineError(self._explain(exc, "listing its models"), "load") from None
        self._check(response, "listing its models")
        try:
            data = response.json().get("data", [])
            return [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]
        except (ValueError, AttributeError, TypeError):
            raise EngineError(f"{self.endpoint.name} did not answer /v1/models in OpenAI's shape", "load") from None

    def _info(self, model: str, started: float) -> ModelInfo:
        return ModelInfo(path=model, name=f"remote: {self.endpoint.name}/{model}", architecture="remote",
                         n_ctx=0, n_ctx_train=0, n_layer=0, n_gpu_layers=0, n_params=0, size_bytes=0,
                         vocab_size=0, bos_token="", eos_token="", add_bos=False,
                         gpu_offload_supported=False, load_s=time.perf_counter() - started)

    # ---- commands (EngineClient's) -------------------------------------------------------

    def load(self, settings: LoadSettings) -> None:
        """"Load" the remote model ``settings.path``: check the endpoint lists it, then report Loaded."""
        threading.Thread(target=self._load, args=(settings.path,), name="remote-load", daemon=True).start()

    def _load(self, model: str) -> None:
        started = time.perf_counter()
        try:
            ids = self.list_models()
        except EngineError as exc:
            self._deliver(Error(str(exc), "load"))
            return
        if ids and model not in ids:
            self._deliver(Error(f"{self.endpoint.name} has no model {model!r} (it has: {', '.join(ids[:20])})",
                                "load"))
            return
        self._deliver(Loaded(self._info(model, started)))

    def generate(self, prompt: str, stop: Sequence[str] = (), sampling: SamplingSettings | None = None,
                 chat_id: str = "default", *, messages: Sequence[Message] | None = None) -> int:
        request_id = self._last_request = next(self._ids)
        threading.Thread(target=self._generate, name="remote-reply", daemon=True,
                         args=(request_id, prompt, tuple(stop), sampling or SamplingSettings(), messages)).start()
        return request_id

    def stop(self, request_id: int | None = None) -> None:
        """Stop a reply now (the latest by default): the stream is closed, what came is kept."""
        target = request_id if request_id is not None else self._last_request
        with self._lock:
            self._stopped.add(target)
            response = self._responses.get(target)
        if response is not None:  # unblocks the reader at once, even while the server thinks
            with contextlib.suppress(Exception):  # the reader reports how the stream ended
                response.close()

    def unload(self) -> None:
        self.model = None
        self._deliver(Unloaded())

    def close(self) -> None:
        with self._lock:
            self._stopped.update(range(self._last_request + 1))
        self._http.close()

    def __enter__(self) -> RemoteEngine:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    # ---- one reply -----------------------------------------------------------------------

    def _body(self, prompt: str, stop: tuple[str, ...], sampling: SamplingSettings,
              messages: Sequence[Message] | None) -> tuple[str, dict[str, Any]]:
        model = self.model.path if self.model else ""
        body: dict[str, Any] = {"model": model, "stream": True, "max_tokens": sampling.max_tokens,
                                "temperature": sampling.temperature, "top_p": sampling.top_p,
                                "stream_options": {"include_usage": True}}
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.frequency_penalty:
            body["frequency_penalty"] = sampling.frequency_penalty
        if sampling.presence_penalty:
            body["presence_penalty"] = sampling.presence_penalty
        if stop:
            body["stop"] = list(stop)[:4]
        if messages is None:
            messages = decode_messages(prompt)  # the chat window's prompt for a remote model
        if messages is None:
            return "/completions", {**body, "prompt": prompt}
        return "/chat/completions", {**body, "messages": [{"role": m.role, "content": m.content}
                                                          for m in messages]}

    def _generate(self, request_id: int, prompt: str, stop: tuple[str, ...], sampling: SamplingSettings,
                  messages: Sequence[Message] | None) -> None:
        path, body = self._body(prompt, stop, sampling, messages)
        started = time.perf_counter()
        first: float | None = None
        pieces = 0
        usage: dict[str, Any] = {}
        reason: StopReason = "eos"
        try:
            with self._http.stream("POST", path, json=body) as response:
                with self._lock:
                    self._responses[request_id] = response
                    if request_id in self._stopped:
                        raise httpx.ReadError("stopped")
                self._check(response, "replying")
                for line in response.iter_lines():
                    if request_id in self._stopped:
                        reason = "stopped"
                        break
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if "error" in chunk:
                        error = chunk["error"]
                        message = error.get("message") if isinstance(error, dict) else str(error)
                        raise EngineError(f"{self.endpoint.name} failed mid-reply: {message}")
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content") or choice.get("text") or ""
                        if text:
                            first = first or time.perf_counter()
                            pieces += 1
                            self._deliver(Tokens(request_id, text))
                        if choice.get("finish_reason"):
                            reason = _REASONS.get(choice["finish_reason"], "eos")
        except EngineError as exc:
            self._deliver(Error(str(exc), "generate", request_id))
            return
        except (httpx.HTTPError, ValueError, AttributeError, TypeError) as exc:
            if request_id in self._stopped:
                reason = "stopped"
            else:
                detail = "its answer was not OpenAI's stream" if isinstance(exc, ValueError | TypeError |
                                                                           AttributeError) else ""
                message = self._explain(exc, "replying") if not detail else f"{self.endpoint.name}: {detail}"
                if first is not None:
                    message += "; the partial reply is kept"
                self._deliver(Error(message, "generate", request_id))
                return
        finally:
            with self._lock:
                self._responses.pop(request_id, None)
        end = time.perf_counter()
        generated = int(usage.get("completion_tokens") or pieces)
        self._deliver(Done(request_id, GenerationStats(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            reused_tokens=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0),
            evaluated_tokens=0, generated_tokens=generated, prompt_eval_s=(first or end) - started,
            decode_s=end - first if first else 0.0, ttft_s=(first or end) - started, stop_reason=reason)))

    # ---- blocking helpers (no on_event), as EngineClient's ---------------------------------

    def next_event(self, timeout: float | None = None) -> Event:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise EngineError(f"{self.endpoint.name} did not answer within {timeout:.0f} s") from None

    def load_model(self, settings: LoadSettings, timeout: float = 60.0) -> ModelInfo:
        self.load(settings)
        while True:
            event = self.next_event(timeout)
            if isinstance(event, Loaded):
                return event.info
            if isinstance(event, Error):
                raise EngineError(event.message, event.kind)

    def stream(self, prompt: str, stop: Sequence[str] = (), sampling: SamplingSettings | None = None,
               chat_id: str = "default", timeout: float = 300.0, *,
               messages: Sequence[Message] | None = None) -> Iterator[str]:
        """Yield reply text as it streams; closing early stops it. Errors raise EngineError."""
        request_id = self.generate(prompt, stop, sampling, chat_id, messages=messages)
        finished = False
        try:
            while True:
                event = self.next_event(timeout)
                if isinstance(event, Tokens) and event.request_id == request_id:
                    yield event.text
                elif isinstance(event, Done) and event.request_id == request_id:
                    finished = True
                    return
                elif isinstance(event, Error) and event.request_id == request_id:
                    finished = True
                    raise EngineError(event.message, event.kind)
        finally:
            if not finished:
                self.stop(request_id)
