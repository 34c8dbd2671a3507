"""The official OpenAI client against a real `hearth serve` with SmolLM2 on loopback."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest

from app.chats.store import ChatStore
from app.conversation.conversation import Conversation
from app.server.requests import parse_chat
from tests.server.conftest import Served

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def client(served: Served, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.url, api_key=kwargs.pop("api_key", "unused"), max_retries=0,
                         timeout=120, **kwargs)


def greedy_chat(served: Served, messages: list[dict[str, str]], tokens: int = 8, **extra: Any) -> Any:
    return client(served).chat.completions.create(model=served.model_id, messages=messages,  # type: ignore[arg-type]
                                                  max_tokens=tokens, temperature=0, **extra)


def streamed(served: Served, messages: list[dict[str, str]], tokens: int = 8) -> tuple[str, list[Any]]:
    chunks = list(client(served).chat.completions.create(
        model=served.model_id, messages=messages, max_tokens=tokens, temperature=0, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


def test_model_list_names_the_loaded_model(served: Served) -> None:
    models = client(served).models.list()
    assert [m.id for m in models.data] == [served.model_id]
    assert models.data[0].owned_by == "hearth"


def test_chat_non_stream_has_usage_and_finish_reason(served: Served) -> None:
    reply = greedy_chat(served, QUESTION, tokens=6)
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("length", "stop")
    assert reply.usage.completion_tokens <= 6 and reply.usage.prompt_tokens > 5
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.model == served.model_id


def test_a_request_gets_the_prompt_a_new_chat_gets_in_the_window(served: Served) -> None:
    """No system message: the model's default, as a chat whose system message was never set; an
    empty one: none at all, as a chat whose system message was cleared (tests/conversation has more)."""
    chat_format = served.bridge.chat_format
    assert chat_format is not None and chat_format.system_message
    window = Conversation(ChatStore(Path(":memory:")))
    window.add_user(QUESTION[0]["content"])
    assert served.bridge.render(parse_chat({"messages": QUESTION}).messages) == window.build_prompt(chat_format)
    plain = greedy_chat(served, QUESTION, tokens=1)
    explicit = greedy_chat(served, [{"role": "system", "content": chat_format.system_message}, *QUESTION], tokens=1)
    empty = greedy_chat(served, [{"role": "system", "content": ""}, *QUESTION], tokens=1)
    assert plain.usage.prompt_tokens == explicit.usage.prompt_tokens
    assert empty.usage.prompt_tokens < plain.usage.prompt_tokens - 10


def test_greedy_stream_equals_non_stream(served: Served) -> None:
    whole = greedy_chat(served, QUESTION).choices[0].message.content
    text, chunks = streamed(served, QUESTION)
    assert text == whole
    assert chunks[0].choices[0].delta.role == "assistant"
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishing) == 1 and finishing[0].choices[0].finish_reason in ("length", "stop")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_stop_sequence_cuts_the_reply(served: Served) -> None:
    whole = greedy_chat(served, QUESTION, tokens=10).choices[0].message.content
    words = whole.split()
    assert len(words) >= 3, whole
    stop = " " + words[2]
    reply = greedy_chat(served, QUESTION, tokens=10, stop=[stop])
    assert reply.choices[0].message.content == whole[: whole.index(stop)]
    assert reply.choices[0].finish_reason == "stop"


def test_legacy_completions_stream_and_not(served: Served) -> None:
    api = client(served)
    whole = api.completions.create(model=served.model_id, prompt="The capital of France is", max_tokens=6,
                                   temperature=0)
    assert whole.object == "text_completion" and whole.choices[0].text
    assert whole.usage is not None and whole.usage.completion_tokens <= 6
    parts = list(api.completions.create(model=served.model_id, prompt="The capital of France is",
                                        max_tokens=6, temperature=0, stream=True))
    assert "".join(p.choices[0].text for p in parts) == whole.choices[0].text


def test_multi_turn_client_evaluates_only_new_tokens(served: Served) -> None:
    first = greedy_chat(served, QUESTION, tokens=6)
    other = [{"role": "user", "content": "Name a colour."}]
    greedy_chat(served, other, tokens=4)  # another conversation in between
    turn2 = [*QUESTION, {"role": "assistant", "content": first.choices[0].message.content},
             {"role": "user", "content": "And of Spain?"}]
    second = greedy_chat(served, turn2, tokens=4)
    cached = second.usage.prompt_tokens_details.cached_tokens
    stats = served.bridge._client.last_stats
    assert stats is not None and stats.restored_chat
    assert cached >= first.usage.prompt_tokens - 1
    assert stats.evaluated_tokens == second.usage.prompt_tokens - cached < 20


def test_two_concurrent_streams_do_not_mix(served: Served) -> None:
    questions = [QUESTION, [{"role": "user", "content": "Name a colour."}]]
    expected = [greedy_chat(served, q, tokens=6).choices[0].message.content for q in questions]
    results: list[str | None] = [None, None]

    def run(index: int) -> None:
        results[index] = streamed(served, questions[index], tokens=6)[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(200)
    assert results == expected


def test_client_hanging_up_mid_stream_stops_the_reply(served: Served) -> None:
    """The hung-up reply ends as "stopped", far short of its 400 tokens, and the engine serves on."""
    stopped: list[Any] = []
    original = served.bridge._on_event

    def spy(event: Any) -> None:
        if type(event).__name__ == "Done":
            stopped.append(event.stats)
        original(event)

    def wait_for_stop() -> None:
        deadline = time.monotonic() + 60
        while not stopped and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stopped and stopped[0].stop_reason == "stopped" and stopped[0].generated_tokens < 400
        stopped.clear()

    served.bridge._client.on_event = spy
    body = {"model": served.model_id, "prompt": "Once upon a time", "max_tokens": 400, "temperature": 0,
            "ignore_eos": True, "stream": True}
    try:
        with httpx.Client(timeout=120) as http, \
                http.stream("POST", f"{served.url}/completions", json=body) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    break
        wait_for_stop()
        # A non-streaming client that gives up waiting: its reply is stopped too.
        with pytest.raises(httpx.TimeoutException):
            httpx.post(f"{served.url}/completions", json={**body, "stream": False}, timeout=1.5)
        wait_for_stop()
    finally:
        served.bridge._client.on_event = original
    assert greedy_chat(served, QUESTION, tokens=2).choices[0].message.content


def test_unknown_model_is_404(served: Served) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(served).chat.completions.create(model="no-such-model", messages=QUESTION)  # type: ignore[arg-type]
    assert caught.value.status_code == 404
    assert "no-such-model" in caught.value.message and served.model_id in caught.value.message


def test_malformed_body_and_bad_fields_are_400(served: Served) -> None:
    response = httpx.post(f"{served.url}/chat/completions", content=b"{not json",
                          headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"} and "JSON" in error["message"]
    assert "Traceback" not in response.text
    with pytest.raises(openai.BadRequestError) as caught:
        client(served).chat.completions.create(model=served.model_id, messages=QUESTION,  # type: ignore[arg-type]
                                               temperature="hot")  # type: ignore[arg-type]
    assert "temperature" in caught.value.message
    with pytest.raises(openai.BadRequestError):
        client(served).chat.completions.create(model=served.model_id, messages=[])
    with pytest.raises(openai.BadRequestError) as tools:
        client(served).chat.completions.create(
            model=served.model_id, messages=QUESTION,  # type: ignore[arg-type]
            tools=[{"type": "function", "function": {"name": "weather", "parameters": {}}}])
    assert "tools" in tools.value.message
    missing = httpx.get(f"{served.url}/nothing-here")
    assert missing.status_code == 404 and "error" in missing.json()
    # ...and it keeps serving
    assert greedy_chat(served, QUESTION, tokens=1).choices[0].message.content is not None
