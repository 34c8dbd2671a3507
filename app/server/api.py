"""The OpenAI-compatible HTTP API on Starlette: /v1/models, /v1/chat/completions, /v1/completions."""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.server.engine_bridge import (
    EngineBridge,
    EngineBusy,
    EngineError,
    GenerationStats,
    ServedModel,
    TemplateError,
    Turn,
    UnknownModel,
    conversation_id,
)
from app.server.requests import (
    BadRequest,
    ChatRequest,
    CompletionRequest,
    GenerationRequest,
    parse_chat,
    parse_completion,
    parse_json,
)
from app.server.tool_calls import parse_tool_calls

log = logging.getLogger("hearth.server")
FINGERPRINT = "hearth"
MAX_BODY = 32 << 20
_FINISH = {"eos": "stop", "stop_string": "stop", "stopped": "stop", "max_tokens": "length",
           "context_full": "length"}


@dataclass(frozen=True)
class RequestRecord:
    """One line of the request log (the CLI prints it, the app's API panel lists it)."""

    when: float
    client: str
    method: str
    path: str
    status: int
    duration_s: float
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def line(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.when))
        text = f"{stamp} {self.client} {self.method} {self.path} {self.status} {self.duration_s * 1000:.0f} ms"
        if self.model:
            text += f" {self.model}"
        if self.prompt_tokens or self.completion_tokens:
            text += f" ({self.prompt_tokens} prompt + {self.completion_tokens} completion tokens)"
        return text


RequestLog = Callable[[RequestRecord], None]


def error_response(status: int, message: str, kind: str, code: str | None = None,
                   param: str | None = None) -> JSONResponse:
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status)


def _error_for(exc: BaseException) -> JSONResponse:
    if isinstance(exc, BadRequest):
        return error_response(400, str(exc), "invalid_request_error", "invalid_value", exc.param)
    if isinstance(exc, TemplateError):
        return error_response(400, str(exc), "invalid_request_error", "template_error", "messages")
    if isinstance(exc, UnknownModel):
        return error_response(404, str(exc), "invalid_request_error", "model_not_found", "model")
    if isinstance(exc, EngineBusy):
        return error_response(429, str(exc), "rate_limit_error", "server_busy")
    if isinstance(exc, EngineError) and exc.kind in ("load", "memory"):
        return error_response(503, str(exc), "server_error", "model_unavailable")
    if isinstance(exc, EngineError) and exc.kind == "context":
        return error_response(400, str(exc), "invalid_request_error", "context_length_exceeded", "messages")
    if isinstance(exc, EngineError):
        return error_response(500, str(exc), "server_error", "engine_error")
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, f"internal error ({type(exc).__name__}: {exc})", "server_error", "internal_error")


class _Gate:
    """Pure ASGI middleware: the API key check and the request log (status, time, tokens)."""

    def __init__(self, app: ASGIApp, api_key: str | None, on_request: RequestLog | None) -> None:
        self.app, self.api_key, self.on_request = app, api_key, on_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.time()
        status = [0]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        state = scope.setdefault("state", {})
        try:
            if self.api_key and scope["method"] != "OPTIONS" and not self._authorised(scope):
                await error_response(401, "missing or wrong API key: send the header "
                                     "'Authorization: Bearer KEY' with the key the server was started with",
                                     "authentication_error", "invalid_api_key")(scope, receive, sending)
            else:
                await self.app(scope, receive, sending)
        finally:
            if self.on_request is not None:
                client = scope.get("client")
                record = RequestRecord(
                    started, client[0] if client else "-", scope["method"], scope["path"], status[0] or 499,
                    time.time() - started, state.get("model", ""), state.get("prompt_tokens", 0),
                    state.get("completion_tokens", 0))
                try:
                    self.on_request(record)
                except Exception:  # a broken log must not break serving
                    log.exception("request log failed")

    def _authorised(self, scope: Scope) -> bool:
        assert self.api_key is not None
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"").decode("latin-1")
        token = given[7:].strip() if given[:7].lower() == "bearer " else ""
        return hmac.compare_digest(token.encode(), self.api_key.encode())


class _TurnResponse(EventSourceResponse):
    """A stream that gives the engine back however it ends, even if it never started."""

    def __init__(self, content: AsyncIterator[dict[str, str]], release: Callable[[], None]) -> None:
        super().__init__(content, ping=10)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def _data(payload: dict[str, Any]) -> dict[str, str]:
    return {"data": json.dumps(payload, ensure_ascii=False)}


def _usage(stats: GenerationStats | None) -> dict[str, Any]:
    prompt = stats.prompt_tokens if stats else 0
    completion = stats.generated_tokens if stats else 0
    details = {"cached_tokens": stats.reused_tokens if stats else 0}
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": details}


class OpenAIApi:
    """The endpoints over one :class:`EngineBridge`."""

    def __init__(self, bridge: EngineBridge) -> None:
        self.bridge = bridge

    async def models(self, request: Request) -> Response:
        served = await anyio.to_thread.run_sync(self.bridge.models)
        return JSONResponse({"object": "list", "data": [
            {"id": m.id, "object": "model", "created": m.created, "owned_by": "hearth"} for m in served]})

    async def model(self, request: Request) -> Response:
        served = await anyio.to_thread.run_sync(self.bridge.find, request.path_params["model"])
        return JSONResponse({"id": served.id, "object": "model", "created": served.created, "owned_by": "hearth"})

    async def _body(self, request: Request) -> dict[str, Any]:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            raise BadRequest(f"the request body is {int(declared) >> 20} MB, more than this server takes "
                             f"({MAX_BODY >> 20} MB)")
        return parse_json(await request.body())

    # ---- generation shared by both endpoints ---------------------------------------------

    async def _start(self, request: Request, parsed: GenerationRequest, render: Callable[[ServedModel], str],
                     chat: bool) -> tuple[ServedModel, Turn, str, tuple[str, ...], Any]:
        """Find the model, take the engine's turn (loading it if needed), build prompt and sampling."""
        served = self.bridge.find(parsed.model)
        request.state.model = served.id
        turn = await self.bridge.acquire(served)
        try:
            prompt = render(served)
            stops = tuple(dict.fromkeys([*(self.bridge.stops() if chat else ()), *parsed.stop]))
            overrides = dict(parsed.sampling)
            info = self.bridge.info
            overrides["max_tokens"] = parsed.max_tokens or (info.n_ctx if info else 4096)
            sampling = self.bridge.sampling(overrides)
        except BaseException:
            turn.release()
            raise
        return served, turn, prompt, stops, sampling

    async def _collect(self, request: Request, prompt: str, stops: tuple[str, ...], sampling: Any,
                       chat_id: str) -> tuple[str, GenerationStats | None]:
        """The whole reply; a client that hangs up meanwhile stops it."""
        parts: list[str] = []
        stats: GenerationStats | None = None

        async def generate(scope: anyio.CancelScope) -> None:
            nonlocal stats
            async for item in self.bridge.stream(prompt, stops, sampling, chat_id):
                if isinstance(item, str):
                    parts.append(item)
                else:
                    stats = item
            scope.cancel()

        async def watch(scope: anyio.CancelScope) -> None:
            while not await request.is_disconnected():
                await anyio.sleep(0.25)
            scope.cancel()

        async with anyio.create_task_group() as group:
            group.start_soon(generate, group.cancel_scope)
            group.start_soon(watch, group.cancel_scope)
        return "".join(parts), stats

    def _note(self, request: Request, stats: GenerationStats | None) -> None:
        if stats is not None:
            request.state.prompt_tokens = stats.prompt_tokens
            request.state.completion_tokens = stats.generated_tokens

    # ---- /v1/chat/completions ------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        parsed = parse_chat(await self._body(request))
        tools = parsed.tools

        def render(served: ServedModel) -> str:
            if tools and not self.bridge.supports_tools():
                raise BadRequest(f"{served.id}'s prompt template does not support tools: "
                                 "send the request without \"tools\" or use a model that has them", "tools")
            return self.bridge.render(parsed.messages, tools)

        served, turn, prompt, stops, sampling = await self._start(request, parsed, render, chat=True)
        chat_id = conversation_id(served.id, parsed.messages)
        ident, created = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())
        names = {t["function"]["name"] for t in tools or []}
        if not parsed.stream:
            try:
                text, stats = await self._collect(request, prompt, stops, sampling, chat_id)
            finally:
                turn.release()
            self._note(request, stats)
            message: dict[str, Any] = {"role": "assistant", "content": text}
            finish = _FINISH.get(stats.stop_reason if stats else "stopped", "stop")
            if names:
                text, calls = parse_tool_calls(text, names)
                if calls:
                    message = {"role": "assistant", "content": text or None, "tool_calls": calls}
                    finish = "tool_calls"
            return JSONResponse({
                "id": ident, "object": "chat.completion", "created": created, "model": served.id,
                "system_fingerprint": FINGERPRINT,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": _usage(stats)})
        return _TurnResponse(self._chat_events(request, parsed, served, turn, prompt, stops, sampling, chat_id,
                                               ident, created, names), turn.release)

    async def _chat_events(self, request: Request, parsed: ChatRequest, served: ServedModel, turn: Turn,
                           prompt: str,
                           stops: tuple[str, ...], sampling: Any, chat_id: str, ident: str, created: int,
                           names: set[str]) -> AsyncIterator[dict[str, str]]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, str]:
            return _data({"id": ident, "object": "chat.completion.chunk", "created": created,
                          "model": served.id, "system_fingerprint": FINGERPRINT,
                          "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

        stats: GenerationStats | None = None
        held: list[str] = []  # with tools, the reply is held back until it is known to be prose or calls
        try:
            yield chunk({"role": "assistant", "content": ""})
            async for item in self.bridge.stream(prompt, stops, sampling, chat_id):
                if isinstance(item, GenerationStats):
                    stats = item
                elif names:
                    held.append(item)
                else:
                    yield chunk({"content": item})
        except Exception as exc:  # mid-stream: the status is sent already, so the error goes in the stream
            yield _data(json.loads(bytes(_error_for(exc).body)))
            turn.release()
            return
        turn.release()
        self._note(request, stats)
        finish = _FINISH.get(stats.stop_reason if stats else "stopped", "stop")
        if names:
            text, calls = parse_tool_calls("".join(held), names)
            if text:
                yield chunk({"content": text})
            if calls:
                finish = "tool_calls"
                yield chunk({"tool_calls": [{"index": n, **call} for n, call in enumerate(calls)]})
        yield chunk({}, finish)
        if parsed.include_usage:
            yield _data({"id": ident, "object": "chat.completion.chunk", "created": created, "model": served.id,
                         "system_fingerprint": FINGERPRINT, "choices": [], "usage": _usage(stats)})
        yield {"data": "[DONE]"}

    # ---- /v1/completions -----------------------------------------------------------------

    async def completions(self, request: Request) -> Response:
        parsed = parse_completion(await self._body(request))
        served, turn, prompt, stops, sampling = await self._start(request, parsed, lambda _s: parsed.prompt, chat=False)
        chat_id = f"api-completions-{served.id}"
        ident, created = f"cmpl-{secrets.token_hex(12)}", int(time.time())
        if not parsed.stream:
            try:
                text, stats = await self._collect(request, prompt, stops, sampling, chat_id)
            finally:
                turn.release()
            self._note(request, stats)
            return JSONResponse({
                "id": ident, "object": "text_completion", "created": created, "model": served.id,
                "system_fingerprint": FINGERPRINT,
                "choices": [{"index": 0, "text": (prompt if parsed.echo else "") + text, "logprobs": None,
                             "finish_reason": _FINISH.get(stats.stop_reason if stats else "stopped", "stop")}],
                "usage": _usage(stats)})
        return _TurnResponse(self._completion_events(request, parsed, served, turn, prompt, stops, sampling,
                                                     chat_id, ident, created), turn.release)

    async def _completion_events(self, request: Request, parsed: CompletionRequest, served: ServedModel,
                                 turn: Turn, prompt: str, stops: tuple[str, ...], sampling: Any, chat_id: str,
                                 ident: str, created: int) -> AsyncIterator[dict[str, str]]:
        def chunk(text: str, finish: str | None = None) -> dict[str, str]:
            return _data({"id": ident, "object": "text_completion", "created": created, "model": served.id,
                          "system_fingerprint": FINGERPRINT,
                          "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]})

        stats: GenerationStats | None = None
        try:
            if parsed.echo:
                yield chunk(prompt)
            async for item in self.bridge.stream(prompt, stops, sampling, chat_id):
                if isinstance(item, GenerationStats):
                    stats = item
                else:
                    yield chunk(item)
        except Exception as exc:
            yield _data(json.loads(bytes(_error_for(exc).body)))
            turn.release()
            return
        turn.release()
        self._note(request, stats)
        yield chunk("", _FINISH.get(stats.stop_reason if stats else "stopped", "stop"))
        if parsed.include_usage:
            yield _data({"id": ident, "object": "text_completion", "created": created, "model": served.id,
                         "choices": [], "usage": _usage(stats)})
        yield {"data": "[DONE]"}


def _wrap(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            response: Response = await handler(request)
            return response
        except Exception as exc:
            return _error_for(exc)
    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(404, f"no such endpoint: {request.method} {request.url.path} (this server has "
                              "GET /v1/models, POST /v1/chat/completions and POST /v1/completions)",
                              "invalid_request_error", "unknown_url")
    return error_response(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}",
                          "invalid_request_error", None)


async def _server_error(request: Request, exc: Exception) -> Response:
    return _error_for(exc)


def create_app(bridge: EngineBridge, *, api_key: str | None = None, cors_origins: tuple[str, ...] = (),
               on_request: RequestLog | None = None) -> Starlette:
    """The ASGI app; CORS stays off unless ``cors_origins`` names the web pages allowed to call it."""
    api = OpenAIApi(bridge)
    routes = [
        Route("/v1/models", _wrap(api.models), methods=["GET"]),
        Route("/v1/models/{model:path}", _wrap(api.model), methods=["GET"]),
        Route("/v1/chat/completions", _wrap(api.chat_completions), methods=["POST"]),
        Route("/v1/completions", _wrap(api.completions), methods=["POST"]),
    ]
    middleware = []
    if cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(cors_origins),
                                     allow_methods=["GET", "POST", "OPTIONS"],
                                     allow_headers=["Authorization", "Content-Type"]))
    middleware.append(Middleware(_Gate, api_key=api_key, on_request=on_request))
    return Starlette(routes=routes, middleware=middleware,
                     exception_handlers={HTTPException: _http_error, Exception: _server_error})
