"""OpenAI request bodies checked and turned into Hearth's terms; a bad field is one clear BadRequest."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from app.errors import HearthError
from app.templates.prompt import Message

MAX_STOPS = 16


class BadRequest(HearthError):
    """A request the server cannot take: 400, naming the field (``param``) and what is expected."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass
class GenerationRequest:
    """What both endpoints share: the model, streaming, stops and sampling overrides."""

    model: str | None
    stream: bool = False
    include_usage: bool = False
    stop: list[str] = field(default_factory=list)
    sampling: dict[str, Any] = field(default_factory=dict)
    max_tokens: int | None = None


@dataclass
class ChatRequest(GenerationRequest):
    messages: list[Message] = field(default_factory=list)
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None


@dataclass
class CompletionRequest(GenerationRequest):
    prompt: str = ""
    echo: bool = False


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON ({exc}); send a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"{name} must be a number, not {json.dumps(value)[:40]}", name)
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low:g} and {high:g}, not {value:g}", name)
    return float(value)


def _integer(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name} must be a whole number, not {json.dumps(value)[:40]}", name)
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, not {value}", name)
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false", name)
    return value


def _common(body: dict[str, Any], request: GenerationRequest) -> None:
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequest("model must be a string (an id from GET /v1/models)", "model")
    request.model = model or None
    request.stream = _flag(body, "stream")
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise BadRequest("stream_options must be an object", "stream_options")
        request.include_usage = bool(options.get("include_usage"))
    n = _integer(body, "n", 1, 1)
    del n  # only one choice per request
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
            raise BadRequest("stop must be a string or a list of non-empty strings", "stop")
        if len(stop) > MAX_STOPS:
            raise BadRequest(f"stop takes at most {MAX_STOPS} strings", "stop")
        request.stop = list(stop)
    sampling: dict[str, Any] = {
        "temperature": _number(body, "temperature", 0.0, 2.0),
        "top_p": _number(body, "top_p", 0.0, 1.0),
        "frequency_penalty": _number(body, "frequency_penalty", -2.0, 2.0),
        "presence_penalty": _number(body, "presence_penalty", -2.0, 2.0),
        # llama.cpp's own knobs, as llama-server takes them
        "top_k": _integer(body, "top_k", 0, 1000),
        "min_p": _number(body, "min_p", 0.0, 1.0),
        "repeat_penalty": _number(body, "repeat_penalty", 0.0, 10.0),
        "seed": _integer(body, "seed", -(2**63), 2**64 - 1),
    }
    if body.get("ignore_eos") is not None:
        sampling["ignore_eos"] = _flag(body, "ignore_eos")
    request.sampling = {k: v for k, v in sampling.items() if v is not None}
    for name in ("max_completion_tokens", "max_tokens"):
        value = _integer(body, name, 1, 1 << 30)
        if value is not None:
            request.max_tokens = value
            break
    if body.get("logprobs") not in (None, False) or body.get("top_logprobs") not in (None, 0):
        raise BadRequest("logprobs are not supported by this server", "logprobs")
    response_format = body.get("response_format")
    if response_format is not None and (not isinstance(response_format, dict)
                                        or response_format.get("type") not in ("text", None)):
        raise BadRequest("response_format: only {\"type\": \"text\"} is supported", "response_format")


def _content(value: Any, index: int) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise BadRequest(f"messages[{index}].content: only text parts are supported, not {kind!r}",
                                 "messages")
            parts.append(part["text"])
        return "".join(parts)
    raise BadRequest(f"messages[{index}].content must be a string or a list of text parts", "messages")


def _tool_calls_text(calls: Any, index: int) -> str:
    """An earlier assistant turn's tool calls, written the way tool-calling templates expect them."""
    if not isinstance(calls, list):
        raise BadRequest(f"messages[{index}].tool_calls must be a list", "messages")
    lines = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BadRequest(f"messages[{index}].tool_calls: each needs a function with a name", "messages")
        arguments = function.get("arguments", "{}")
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError:
            parsed = arguments
        lines.append("<tool_call>\n" + json.dumps({"name": function["name"], "arguments": parsed})
                     + "\n</tool_call>")
    return "\n".join(lines)


def _messages(value: Any) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise BadRequest("messages must be a non-empty list of {role, content} objects", "messages")
    messages = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise BadRequest(f"messages[{index}] must be an object with role and content", "messages")
        role = item.get("role")
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant", "tool"):
            raise BadRequest(f"messages[{index}].role must be system, user, assistant or tool, "
                             f"not {json.dumps(role)[:40]}", "messages")
        content = _content(item.get("content"), index)
        if role == "assistant" and item.get("tool_calls"):
            calls = _tool_calls_text(item["tool_calls"], index)
            content = f"{content}\n{calls}" if content else calls
        messages.append(Message(role, content))
    return messages


def parse_chat(body: dict[str, Any]) -> ChatRequest:
    request = ChatRequest(model=None)
    _common(body, request)
    request.messages = _messages(body.get("messages"))
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or not all(
                isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("function"), dict)
                and isinstance(t["function"].get("name"), str) for t in tools):
            raise BadRequest("tools must be a list of {\"type\": \"function\", \"function\": {\"name\", ...}}",
                             "tools")
        request.tools = tools or None
    request.tool_choice = body.get("tool_choice")
    if request.tool_choice == "none":
        request.tools = None
    return request


def parse_completion(body: dict[str, Any]) -> CompletionRequest:
    request = CompletionRequest(model=None)
    _common(body, request)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise BadRequest("prompt must be a string (one prompt per request)", "prompt")
    if body.get("suffix"):
        raise BadRequest("suffix (fill-in-the-middle) is not supported", "suffix")
    request.prompt = prompt
    request.echo = _flag(body, "echo")
    if request.max_tokens is None:
        request.max_tokens = 16  # OpenAI's default for legacy completions
    return request
