"""Find the tool calls in a model's reply: Hermes/Qwen ``<tool_call>`` blocks, Mistral's
``[TOOL_CALLS]`` list, or a bare JSON call as Llama 3.1 writes it."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_MISTRAL = "[TOOL_CALLS]"


def _call(obj: Any) -> dict[str, Any] | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):  # already OpenAI-shaped
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return None
    arguments = obj.get("arguments", obj.get("parameters", {}))
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return {"id": f"call_{secrets.token_hex(12)}", "type": "function",
            "function": {"name": name, "arguments": arguments}}


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def parse_tool_calls(text: str, tool_names: set[str]) -> tuple[str, list[dict[str, Any]]]:
    """Split a reply into its prose and the calls of known tools (``tool_names``).

    Text that only looks like a call (unknown tool, broken JSON) stays prose.
    """
    found: list[dict[str, Any]] = []
    if "<tool_call>" in text:
        for block in _TAGGED.findall(text):
            call = _call(_json(block))
            if call and call["function"]["name"] in tool_names:
                found.append(call)
        if found:
            return _TAGGED.sub("", text).strip(), found
    stripped = text.strip()
    if stripped.startswith(_MISTRAL):
        stripped = stripped[len(_MISTRAL):].strip()
    if stripped[:1] in ("{", "["):
        parsed = _json(stripped)
        items = parsed if isinstance(parsed, list) else [parsed]
        calls = [_call(item) for item in items]
        if calls and all(c is not None and c["function"]["name"] in tool_names for c in calls):
            return "", [c for c in calls if c is not None]
    return text, []
