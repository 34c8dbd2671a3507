"""OpenAI request bodies: what is taken, and one clear 400 line naming the field for what is not."""

from __future__ import annotations

import pytest

from app.server.requests import BadRequest, parse_chat, parse_completion, parse_json

HI = [{"role": "user", "content": "hi"}]


def test_a_full_chat_request_maps_onto_hearths_sampling() -> None:
    request = parse_chat({"model": "m", "messages": [{"role": "developer", "content": "be brief"},
                                                     {"role": "user", "content": [{"type": "text", "text": "a"},
                                                                                  {"type": "text", "text": "b"}]}],
                          "max_completion_tokens": 7, "temperature": 0.2, "top_p": 0.9, "seed": 3,
                          "stop": "END", "presence_penalty": 0.5, "frequency_penalty": -0.5, "stream": True,
                          "stream_options": {"include_usage": True}})
    assert [(m.role, m.content) for m in request.messages] == [("system", "be brief"), ("user", "ab")]
    assert request.max_tokens == 7 and request.stop == ["END"] and request.stream and request.include_usage
    assert request.sampling == {"temperature": 0.2, "top_p": 0.9, "seed": 3, "presence_penalty": 0.5,
                                "frequency_penalty": -0.5}


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, "messages"),
    ({"messages": HI, "temperature": "hot"}, "temperature"),
    ({"messages": HI, "temperature": 5}, "temperature"),
    ({"messages": HI, "max_tokens": 0}, "max_tokens"),
    ({"messages": HI, "n": 2}, "n"),
    ({"messages": HI, "stop": [1]}, "stop"),
    ({"messages": HI, "logprobs": True}, "logprobs"),
    ({"messages": HI, "response_format": {"type": "json_schema"}}, "response_format"),
    ({"messages": HI, "model": 5}, "model"),
    ({"messages": HI, "tools": [{"type": "function"}]}, "tools"),
])
def test_bad_fields_name_themselves(body: dict[str, object], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_chat(body)
    assert caught.value.param == param and param.split("_")[0] in str(caught.value)


def test_legacy_completions_default_to_16_tokens_and_refuse_fill_in_the_middle() -> None:
    request = parse_completion({"prompt": ["Once"], "echo": True})
    assert request.prompt == "Once" and request.echo and request.max_tokens == 16
    with pytest.raises(BadRequest, match="suffix"):
        parse_completion({"prompt": "a", "suffix": "b"})
    with pytest.raises(BadRequest, match="prompt"):
        parse_completion({"prompt": ["a", "b"]})


def test_bodies_that_are_not_json_objects() -> None:
    for raw in (b"{", b"[1, 2]", b"\xff"):
        with pytest.raises(BadRequest):
            parse_json(raw)
