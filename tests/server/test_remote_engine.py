"""Hearth's remote engine against servers: llama-cpp-python's own, `hearth serve`, and broken ones."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from app.chats.store import ChatStore
from app.cli import main as cli_main
from app.engine.protocol import Done, EngineError, Error, LoadSettings, SamplingSettings, Tokens
from app.paths import app_dirs
from app.remote.endpoints import Endpoint, EndpointStore, endpoint_for
from app.remote.engine import RemoteEngine
from app.templates.prompt import Message
from tests.server.conftest import Served
from tests.server.fake_endpoint import Misbehaving

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
GREEDY = SamplingSettings(temperature=0, max_tokens=6)
HELLO = [Message("user", "What is the capital of France?")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llama_cpp_server() -> Iterator[str]:
    """llama-cpp-python's own OpenAI server (its [server] extra) with SmolLM2, on loopback."""
    pytest.importorskip("llama_cpp.server")
    from tests.assets import smollm2_path

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "512", "--n_threads", "2", "--model_alias", "smol"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("llama_cpp.server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(30)


def _reply(engine: RemoteEngine, messages: list[Message], sampling: SamplingSettings = GREEDY) -> str:
    return "".join(engine.stream("", (), sampling, messages=messages))


def test_against_llama_cpp_python_server(llama_cpp_server: str) -> None:
    with RemoteEngine(endpoint_for(llama_cpp_server)) as engine:
        assert engine.list_models() == ["smol"]
        info = engine.load_model(LoadSettings("smol"))
        assert info.name == f"remote: 127.0.0.1:{llama_cpp_server.rsplit(':', 1)[1]}/smol"
        first = _reply(engine, HELLO)
        assert first and first == _reply(engine, HELLO)  # greedy: the same reply twice
        stats = engine.last_stats
        assert stats is not None and 0 < stats.generated_tokens <= 6 and stats.stop_reason == "max_tokens"
        # Stop mid-reply: the stream ends as "stopped", what came is kept.
        long = SamplingSettings(temperature=0, max_tokens=300)
        pieces = []
        for piece in engine.stream("", (), long, messages=[Message("user", "Tell me a long story.")]):
            pieces.append(piece)
            if len(pieces) == 2:
                break
        assert len(pieces) == 2


def test_against_hearth_serve_streams_the_servers_own_answer(served: Served) -> None:
    import openai

    expected = openai.OpenAI(base_url=served.url, api_key="x").chat.completions.create(
        model=served.model_id, messages=[{"role": "user", "content": HELLO[0].content}], max_tokens=6,
        temperature=0).choices[0].message.content
    events: list[object] = []
    engine = RemoteEngine(Endpoint("box", served.url), on_event=events.append)
    try:
        assert engine.list_models() == [served.model_id]
        engine.load(LoadSettings(served.model_id))
        _wait(lambda: engine.model is not None)
        request = engine.generate("", (), GREEDY, messages=HELLO)
        _wait(lambda: any(isinstance(e, Done | Error) for e in events))
        text = "".join(e.text for e in events if isinstance(e, Tokens) and e.request_id == request)
        assert text == expected
        done = [e for e in events if isinstance(e, Done)]
        assert done and done[0].stats.generated_tokens > 0
        # An unknown model: the load fails with the server's own words.
        events.clear()
        engine.load(LoadSettings("no-such-model"))
        _wait(lambda: bool(events))
        assert isinstance(events[0], Error) and "no-such-model" in events[0].message
    finally:
        engine.close()


def test_cli_chat_through_an_endpoint_is_stored_like_a_local_chat(
        served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["chat", served.model_id, "--endpoint", served.url, "-p", HELLO[0].content,
                     "--temp", "0", "--max-tokens", "6"])
    out = capsys.readouterr()
    assert code == 0 and out.out.strip()
    store = ChatStore(app_dirs().chats_db)
    try:
        chats = store.list_chats()
        assert len(chats) == 1 and chats[0].model.startswith("remote: ")
        messages = store.messages(chats[0].id)
        assert [m.role for m in messages] == ["user", "assistant"]
        assert messages[1].content.strip() == out.out.strip()
    finally:
        store.close()


def test_saved_endpoint_keeps_its_key_private(tmp_path: Path) -> None:
    store = EndpointStore(tmp_path / "endpoints.json")
    store.add(Endpoint("box", "http://10.0.0.5:8080", "sk-secret"))
    assert store.find("box") == Endpoint("box", "http://10.0.0.5:8080", "sk-secret")
    assert "sk-secret" not in repr(store.find("box")) and "sk-secret" not in str(store.find("box"))
    assert (tmp_path / "endpoints.json").stat().st_mode & 0o077 == 0
    with pytest.raises(Exception, match="not an endpoint address"):
        endpoint_for("ftp://x")


def test_endpoint_that_is_down_is_one_clear_error() -> None:
    with RemoteEngine(endpoint_for(f"http://127.0.0.1:{_free_port()}", "sk-secret")) as engine, \
            pytest.raises(EngineError) as caught:
        engine.load_model(LoadSettings("any"))
    message = str(caught.value)
    assert "cannot reach" in message and "\n" not in message and "sk-secret" not in message


def test_endpoint_dropping_mid_stream_keeps_the_partial_reply() -> None:
    server = Misbehaving("drop")
    events: list[object] = []
    engine = RemoteEngine(endpoint_for(server.url), on_event=events.append)
    try:
        engine.generate("", (), GREEDY, messages=HELLO)
        _wait(lambda: any(isinstance(e, Done | Error) for e in events))
    finally:
        engine.close()
    assert [e.text for e in events if isinstance(e, Tokens)] == ["Paris is"]
    errors = [e for e in events if isinstance(e, Error)]
    assert errors and "dropped" in errors[0].message and "partial reply is kept" in errors[0].message


def test_slow_endpoint_times_out_with_one_message() -> None:
    server = Misbehaving("silent")
    engine = RemoteEngine(endpoint_for(server.url), read_timeout=0.5)
    try:
        with pytest.raises(EngineError, match="did not answer"):
            _reply(engine, HELLO)
    finally:
        engine.close()


def _wait(condition: object, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.02)
    assert condition(), "timed out"  # type: ignore[operator]


def test_cli_chat_with_an_endpoint_that_is_down_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["chat", "any", "--endpoint", f"http://127.0.0.1:{_free_port()}", "--api-key", "sk-secret",
                     "-p", "hello"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("hearth: error: cannot reach") and err.count("\n") == 1
    assert "sk-secret" not in err and "Traceback" not in err
