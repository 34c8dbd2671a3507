"""The real SmolLM2 split over two `hearth rpc-server`s on 127.0.0.1: same reply, weights there, faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine.client import EngineClient
from app.engine.protocol import EngineError, LoadSettings, SamplingSettings
from tests.engine.rpc_servers import RpcServer, start_rpc_server
from tests.engine.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.slow

PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
GREEDY = SamplingSettings(temperature=0, repeat_penalty=1.0, max_tokens=24)


@pytest.fixture
def two_servers() -> Iterator[tuple[RpcServer, RpcServer]]:
    first, second = start_rpc_server(), start_rpc_server()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def test_all_layers_on_two_servers_give_the_local_greedy_reply(
    smollm2: Path, two_servers: tuple[RpcServer, RpcServer]
) -> None:
    first, second = two_servers
    before = [first.rss(), second.rss()]
    with EngineClient() as client:
        client.load_model(LoadSettings(str(smollm2), n_ctx=512, n_threads=1))
        local = "".join(client.stream(PROMPT, sampling=GREEDY))
        info = client.load_model(LoadSettings(str(smollm2), n_ctx=512, n_threads=1, n_gpu_layers=-1,
                                              rpc=(first.endpoint, second.endpoint)))
        grown = [first.rss() - before[0], second.rss() - before[1]]
        split = "".join(client.stream(PROMPT, sampling=GREEDY))
    assert "Paris" in local
    assert split == local
    # llama.cpp's split of 30 layers + output over two devices with the same free memory.
    assert info.split == f"30 layers: 16 on {first.endpoint} (device 0), 14 on {second.endpoint} (device 0)"
    # The servers really hold the weights: together they grew by most of the model's size.
    assert min(grown) > 0.2 * info.size_bytes, grown
    assert sum(grown) > 0.7 * info.size_bytes, (grown, info.size_bytes)


def test_killing_a_server_mid_reply_is_one_clear_error_and_local_chat_goes_on(
    smollm2: Path, two_servers: tuple[RpcServer, RpcServer], tmp_path: Path
) -> None:
    first, second = two_servers
    long = SamplingSettings(temperature=0, repeat_penalty=1.0, max_tokens=400, ignore_eos=True)
    parts: list[str] = []
    with EngineClient() as client:
        client.load_model(LoadSettings(str(smollm2), n_ctx=1024, n_threads=1, n_gpu_layers=-1,
                                       rpc=(first.endpoint, second.endpoint)))
        with pytest.raises(EngineError) as caught:
            for text in client.stream(PROMPT, sampling=long):
                parts.append(text)
                if len(parts) == 3:
                    os.kill(second.process.pid, signal.SIGKILL)
        message = str(caught.value)
        assert message.startswith(f"Lost the remote machine {second.endpoint} while generating a reply")
        assert first.endpoint not in message and "\n" not in message
        assert parts, "the partial reply streamed before the server died is kept by the caller"
        assert client.model is None and client.crashes == 1
        # The engine restarted; a local model loads and answers in it.
        tiny = write_tiny_gguf(tmp_path / "tiny.gguf")
        client.load_model(LoadSettings(str(tiny), n_ctx=256))
        assert "".join(client.stream("hello", sampling=SamplingSettings(temperature=0, max_tokens=4)))
        # Loading on the dead machine again names it, and the engine stays up.
        with pytest.raises(EngineError) as again:
            client.load_model(LoadSettings(str(smollm2), n_ctx=512, n_gpu_layers=-1,
                                           rpc=(first.endpoint, second.endpoint)))
        assert again.value.kind == "load" and f"{second.endpoint}: nothing is listening" in str(again.value)
        assert client.crashes == 1


def test_hearth_chat_with_rpc_prints_the_split_and_the_reply(
    smollm2: Path, two_servers: tuple[RpcServer, RpcServer]
) -> None:
    first, second = two_servers
    result = subprocess.run(
        [sys.executable, "-m", "app", "chat", str(smollm2), "-p", "What is the capital of France?",
         "--temp", "0", "--max-tokens", "16", "--ctx", "512", "--threads", "1", "--no-save",
         "--rpc", f"{first.endpoint},{second.endpoint}"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert f"on {first.endpoint} (device 0)" in result.stderr and f"on {second.endpoint}" in result.stderr


def test_hearth_chat_keeps_the_partial_reply_when_a_server_dies(
    smollm2: Path, two_servers: tuple[RpcServer, RpcServer]
) -> None:
    from app.chats.store import ChatStore
    from app.paths import app_dirs

    first, second = two_servers
    chat = subprocess.Popen(
        [sys.executable, "-m", "app", "chat", str(smollm2), "-p", "Write a very long story about a dragon.",
         "--temp", "0", "--max-tokens", "400", "--ctx", "1024", "--threads", "1",
         "--rpc", f"{first.endpoint},{second.endpoint}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert chat.stdout is not None
        shown = chat.stdout.read(8)  # the reply has started streaming
        os.kill(second.process.pid, signal.SIGKILL)
        out, err = chat.communicate(timeout=120)
    finally:
        if chat.poll() is None:
            chat.kill()
    shown += out
    assert chat.returncode == 1
    assert err.strip().splitlines()[-1].startswith(
        f"hearth: error: Lost the remote machine {second.endpoint} while generating a reply")
    assert "Traceback" not in err
    with ChatStore(app_dirs().chats_db) as store:
        (stored,) = store.list_chats()
        user, reply = store.messages(stored.id)
    assert user.content == "Write a very long story about a dragon."
    assert reply.status == "error" and len(reply.content) >= 8
    assert shown.strip().startswith(reply.content.strip()[:8])
