"""The llama.cpp worker process through the client: streaming, stop, KV reuse, bad files, crashes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine.client import EngineClient
from app.engine.llama_runner import EngineError, StopStrings
from app.engine.protocol import Crashed, Done, LoadSettings, SamplingSettings, Tokens
from tests.engine.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.slow

GREEDY = SamplingSettings(temperature=0, repeat_penalty=1.0, max_tokens=24)


def chatml(*turns: str) -> str:
    roles = ["user", "assistant"]
    text = "".join(f"<|im_start|>{roles[i % 2]}\n{t}<|im_end|>\n" for i, t in enumerate(turns))
    return text + "<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def engine(smollm2: Path) -> Iterator[EngineClient]:
    with EngineClient() as client:
        client.load_model(LoadSettings(str(smollm2), n_ctx=4096, n_threads=2))
        yield client


def wait_done(client: EngineClient, request_id: int, timeout: float = 60) -> tuple[list[Tokens], Done]:
    tokens: list[Tokens] = []
    deadline = time.monotonic() + timeout
    while True:
        event = client.next_event(max(0.1, deadline - time.monotonic()))
        if isinstance(event, Tokens) and event.request_id == request_id:
            tokens.append(event)
        elif isinstance(event, Done) and event.request_id == request_id:
            return tokens, event
        elif isinstance(event, Crashed):
            raise AssertionError(event.message)


def test_reply_streams_piece_by_piece(engine: EngineClient) -> None:
    pieces = list(engine.stream(chatml("What is the capital of France?"), ["<|im_end|>"], GREEDY))
    stats = engine.last_stats
    assert stats is not None
    assert len(pieces) >= 2, pieces  # streamed, not one final blob
    assert "Paris" in "".join(pieces)
    assert stats.generated_tokens >= len(pieces)
    assert stats.stop_reason in ("eos", "max_tokens")
    assert "<|im_end|>" not in "".join(pieces)


def test_stop_mid_reply(engine: EngineClient) -> None:
    sampling = SamplingSettings(temperature=0, repeat_penalty=1.0, max_tokens=400, ignore_eos=True)
    request = engine.generate(chatml("Tell me a very long story about a dragon."), (), sampling)
    seen = 0
    while seen < 3:
        event = engine.next_event(30)
        if isinstance(event, Tokens) and event.request_id == request:
            seen += 1
    engine.stop(request)
    _, done = wait_done(engine, request)
    assert done.stats.stop_reason == "stopped"
    assert done.stats.generated_tokens < 50


def test_stop_during_a_long_prompt_evaluation(engine: EngineClient) -> None:
    long_prompt = chatml("Summarise these notes. " + "The quick brown fox jumps over the lazy dog. " * 300)
    started = time.monotonic()
    request = engine.generate(long_prompt, (), GREEDY, chat_id="long")
    engine.stop(request)
    _, done = wait_done(engine, request)
    elapsed = time.monotonic() - started
    stats = done.stats
    assert stats.stop_reason == "stopped"
    assert stats.prompt_tokens > 3000
    # Stopped inside the first 512-token batch: nothing of the prompt counted as evaluated,
    # and well before the ~10 s the whole prompt takes on 2 cores.
    assert stats.evaluated_tokens < 512
    assert stats.generated_tokens == 0
    assert elapsed < 2.5, elapsed
    # The engine carries on normally afterwards.
    reply = "".join(engine.stream(chatml("Say hi."), ["<|im_end|>"], GREEDY, chat_id="long"))
    assert reply


def test_turn_two_evaluates_only_the_new_tokens(engine: EngineClient) -> None:
    first = chatml("Name a fruit.")
    reply = "".join(engine.stream(first, ["<|im_end|>"], GREEDY, chat_id="kv"))
    turn1 = engine.last_stats
    assert turn1 is not None
    second = chatml("Name a fruit.", reply, "Now name a vegetable.")
    "".join(engine.stream(second, ["<|im_end|>"], GREEDY, chat_id="kv"))
    turn2 = engine.last_stats
    assert turn2 is not None
    assert turn2.reused_tokens >= turn1.prompt_tokens
    assert turn2.evaluated_tokens == turn2.prompt_tokens - turn2.reused_tokens
    assert turn2.evaluated_tokens < 20, turn2


def test_switching_chats_restores_the_saved_state(engine: EngineClient) -> None:
    a1 = chatml("Remember the word: lighthouse. Reply OK.")
    reply_a = "".join(engine.stream(a1, ["<|im_end|>"], GREEDY, chat_id="A"))
    a_stats = engine.last_stats
    assert a_stats is not None
    "".join(engine.stream(chatml("Count to three."), ["<|im_end|>"], GREEDY, chat_id="B"))
    a2 = chatml("Remember the word: lighthouse. Reply OK.", reply_a, "What was the word?")
    "".join(engine.stream(a2, ["<|im_end|>"], GREEDY, chat_id="A"))
    back = engine.last_stats
    assert back is not None
    assert back.restored_chat
    assert back.reused_tokens >= a_stats.prompt_tokens


def test_context_that_does_not_fit_in_memory_says_so(smollm2: Path) -> None:
    with EngineClient() as client, pytest.raises(EngineError) as caught:
        client.load_model(LoadSettings(str(smollm2), n_ctx=1 << 24, n_threads=2))
    assert caught.value.kind == "memory"
    assert "smaller context" in str(caught.value)


def test_bad_files_fail_clearly_and_the_engine_lives_on(tmp_path: Path, smollm2: Path) -> None:
    truncated = tmp_path / "truncated.gguf"
    with smollm2.open("rb") as f:
        truncated.write_bytes(f.read(20_000_000))
    noise = tmp_path / "noise.gguf"
    noise.write_bytes(bytes(range(256)) * 4000)
    wrong = write_tiny_gguf(tmp_path / "wrong.gguf", wrong_shape=True)
    good = write_tiny_gguf(tmp_path / "good.gguf")
    with EngineClient() as client:
        pid = client.pid
        expectations = {truncated: "incomplete", noise: "not a GGUF", wrong: "wrong shape"}
        for path, words in expectations.items():
            with pytest.raises(EngineError, match=words) as caught:
                client.load_model(LoadSettings(str(path), n_ctx=256))
            assert str(path) in str(caught.value)
        assert client.pid == pid  # handled as errors: the worker never died
        info = client.load_model(LoadSettings(str(good), n_ctx=256))
        assert info.n_layer == 2
        text = "".join(client.stream("hello", (), SamplingSettings(temperature=0, max_tokens=5)))
        assert client.last_stats is not None and client.last_stats.generated_tokens >= 1
        assert isinstance(text, str)


def test_a_file_that_aborts_llama_cpp_crashes_only_the_worker(tmp_path: Path) -> None:
    crasher = write_tiny_gguf(tmp_path / "crasher.gguf", duplicate_token=True)
    good = write_tiny_gguf(tmp_path / "good.gguf")
    with EngineClient() as client:
        first_pid = client.pid
        with pytest.raises(EngineError) as caught:
            client.load_model(LoadSettings(str(crasher), n_ctx=256))
        message = str(caught.value)
        assert "stopped unexpectedly" in message and "restarted" in message
        assert "crasher.gguf" in message
        assert client.crashes == 1
        assert client.pid != first_pid
        assert client.load_model(LoadSettings(str(good), n_ctx=256)).n_layer == 2


def test_stop_strings_are_cut_and_partial_matches_held_back() -> None:
    stops = StopStrings(["<|im_end|>", "### User:"])
    assert stops.feed("Hello <|im") == ("Hello ", False)
    assert stops.feed("_e") == ("", False)
    assert stops.feed("nd|> trailing") == ("", True)
    other = StopStrings(["### User:"])
    assert other.feed("a # b") == ("a # b", False)
    assert other.feed(" ##") == (" ", False)
    assert other.flush() == "##"
    assert StopStrings([]).feed("<|im_end|>") == ("<|im_end|>", False)


def test_stop_without_an_id_stops_only_the_latest_reply(engine: EngineClient) -> None:
    sampling = SamplingSettings(temperature=0, repeat_penalty=1.0, max_tokens=300, ignore_eos=True)
    request = engine.generate(chatml("Write a poem."), (), sampling)
    engine.stop()
    _, done = wait_done(engine, request)
    assert done.stats.stop_reason == "stopped"
    # A later reply is not stopped by that earlier Stop.
    later = "".join(engine.stream(chatml("Say hello."), ["<|im_end|>"], GREEDY))
    assert later and engine.last_stats is not None
    assert engine.last_stats.stop_reason in ("eos", "max_tokens")


def test_a_conversation_longer_than_the_context_is_a_clear_error(engine: EngineClient) -> None:
    too_long = chatml("Read this. " + "The quick brown fox jumps over the lazy dog. " * 500)
    with pytest.raises(EngineError, match="longer than the context of 4096") as caught:
        "".join(engine.stream(too_long, (), GREEDY))
    assert caught.value.kind == "context"
    assert "".join(engine.stream(chatml("Say hi."), ["<|im_end|>"], GREEDY))  # still serving


def test_quantized_kv_cache_without_flash_attention_is_refused_clearly(tmp_path: Path) -> None:
    good = write_tiny_gguf(tmp_path / "good.gguf", n_embd=128)  # q8_0 blocks need head_dim 32
    with EngineClient() as client:
        with pytest.raises(EngineError, match="needs flash attention") as caught:
            client.load_model(LoadSettings(str(good), n_ctx=256, kv_cache_type="q8_0",
                                           flash_attention="off"))
        assert caught.value.kind == "load"
        info = client.load_model(LoadSettings(str(good), n_ctx=256, kv_cache_type="q8_0"))
        assert info.n_ctx == 256
