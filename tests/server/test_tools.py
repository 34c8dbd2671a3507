"""Tools: the request's tools reach a template that renders them, and calls in a reply become tool_calls."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from app.server.engine_bridge import EngineBridge
from app.server.runner import BackgroundServer, ServerSettings
from app.server.tool_calls import parse_tool_calls
from tests.assets import smollm2_path
from tests.engine.tiny_gguf import write_tiny_gguf

TOOLS_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nTools:{% for t in tools %} {{ t.function.name }}{% endfor %}<|im_end|>\n"
    "{% endif %}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "the weather in a city",
                                            "parameters": {"type": "object",
                                                           "properties": {"city": {"type": "string"}}}}}


def test_hermes_llama_and_mistral_calls_are_found() -> None:
    text, calls = parse_tool_calls('Let me look.\n<tool_call>\n{"name": "get_weather", "arguments": '
                                   '{"city": "Paris"}}\n</tool_call>', {"get_weather"})
    assert text == "Let me look."
    assert calls[0]["type"] == "function" and calls[0]["function"]["name"] == "get_weather"
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"} and calls[0]["id"].startswith("call_")
    _, llama = parse_tool_calls('{"name": "get_weather", "parameters": {"city": "Oslo"}}', {"get_weather"})
    assert json.loads(llama[0]["function"]["arguments"]) == {"city": "Oslo"}
    _, mistral = parse_tool_calls('[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Rome"}}]',
                                  {"get_weather"})
    assert len(mistral) == 1


def test_prose_unknown_tools_and_broken_json_stay_text() -> None:
    for text in ("Paris is sunny.", '{"name": "rm_rf", "arguments": {}}', "<tool_call>{broken</tool_call>"):
        assert parse_tool_calls(text, {"get_weather"}) == (text, [])


@pytest.fixture(scope="module")
def tool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    folder = tmp_path_factory.mktemp("tools")
    model = write_tiny_gguf(folder / "tool-tiny.gguf", chat_template=TOOLS_TEMPLATE, chatml_specials=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HEARTH_HOME", str(folder / "home"))
        bridge = EngineBridge(models_dir=folder / "models", load_options={"ctx": 512})
        bridge.preload(str(model))
        bridge.add_model(str(smollm2_path()))  # installed too: loads when a request names it
        bridge.add_model(str(write_tiny_gguf(folder / "broken-tiny.gguf", wrong_shape=True)))
        server = BackgroundServer(bridge, ServerSettings(port=0)).start()
        try:
            yield server
        finally:
            server.stop()


def test_tools_reach_a_template_that_renders_them(tool_server: BackgroundServer) -> None:
    api = openai.OpenAI(base_url=tool_server.url, api_key="x", max_retries=0)
    messages = [{"role": "user", "content": "hello world"}]
    plain = api.chat.completions.create(model="tool-tiny", messages=messages, max_tokens=2,  # type: ignore[arg-type]
                                        temperature=0)
    with_tools = api.chat.completions.create(model="tool-tiny", messages=messages, max_tokens=2,  # type: ignore[arg-type]
                                             temperature=0, tools=[WEATHER])  # type: ignore[list-item]
    assert with_tools.usage is not None and plain.usage is not None
    assert with_tools.usage.prompt_tokens > plain.usage.prompt_tokens + 5  # "Tools: get_weather" is in it
    # An earlier call and its result in the history render too.
    history = [*messages,
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    again = api.chat.completions.create(model="tool-tiny", messages=history, max_tokens=2,  # type: ignore[arg-type]
                                        temperature=0, tools=[WEATHER])  # type: ignore[list-item]
    assert again.usage is not None and again.usage.prompt_tokens > with_tools.usage.prompt_tokens


def test_another_model_loads_when_a_request_names_it(tool_server: BackgroundServer) -> None:
    api = openai.OpenAI(base_url=tool_server.url, api_key="x", max_retries=0)
    assert {m.id for m in api.models.list().data} == {"tool-tiny", "SmolLM2-135M-Instruct.Q4_1", "broken-tiny"}
    assert tool_server.bridge.loaded is not None and tool_server.bridge.loaded.id == "tool-tiny"
    reply = api.chat.completions.create(model="SmolLM2-135M-Instruct.Q4_1", max_tokens=2, temperature=0,
                                        messages=[{"role": "user", "content": "Hi"}])
    assert reply.model == "SmolLM2-135M-Instruct.Q4_1" and reply.choices[0].message.content
    assert tool_server.bridge.loaded.id == "SmolLM2-135M-Instruct.Q4_1"  # one model at a time
    assert api.models.list().data[0].id == "SmolLM2-135M-Instruct.Q4_1"
    api.chat.completions.create(model="tool-tiny", max_tokens=1, messages=[{"role": "user", "content": "x"}])
    assert tool_server.bridge.loaded.id == "tool-tiny"


def test_a_model_that_fails_to_load_is_503_and_the_server_goes_on(tool_server: BackgroundServer) -> None:
    api = openai.OpenAI(base_url=tool_server.url, api_key="x", max_retries=0)
    with pytest.raises(openai.InternalServerError) as caught:
        api.chat.completions.create(model="broken-tiny", max_tokens=1, messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 503 and "broken-tiny could not be loaded" in caught.value.message
    reply = api.chat.completions.create(model="tool-tiny", max_tokens=1, messages=[{"role": "user", "content": "x"}])
    assert reply.choices[0].finish_reason in ("length", "stop")
