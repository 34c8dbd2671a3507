"""The real worker killed at awkward moments, stopped dead, or unable to start: the client always says
what happened within a bound, and a good model loads and replies afterwards."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from app.engine.client import MAX_FAILED_STARTS, EngineClient
from app.engine.protocol import (
    Crashed,
    EngineError,
    Event,
    Loaded,
    LoadSettings,
    Ready,
    SamplingSettings,
    Tokens,
)
from tests.engine.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.slow

LONG = SamplingSettings(temperature=0, max_tokens=100_000, ignore_eos=True)


@pytest.fixture
def good(tmp_path: Path) -> LoadSettings:
    return LoadSettings(str(write_tiny_gguf(tmp_path / "good.gguf", context_length=8192)), n_ctx=8192,
                        n_threads=1)


def kill(pid: int | None) -> None:
    assert pid is not None
    os.kill(pid, signal.SIGKILL)


def wait_for(client: EngineClient, kind: type, timeout: float = 60) -> list[Event]:
    """Events up to and including the first ``kind`` (none of them a Crashed unless that is asked for)."""
    seen: list[Event] = []
    deadline = time.monotonic() + timeout
    while not seen or not isinstance(seen[-1], kind):
        seen.append(client.next_event(max(0.1, deadline - time.monotonic())))
        assert kind is Crashed or not isinstance(seen[-1], Crashed), seen[-1]
    return seen


def still_serves(client: EngineClient, good: LoadSettings) -> None:
    assert client.load_model(good, timeout=60).n_layer == 2
    text = "".join(client.stream("hello", (), SamplingSettings(temperature=0, max_tokens=8), timeout=60))
    assert isinstance(text, str)
    assert client.last_stats is not None and client.last_stats.generated_tokens >= 1


def test_killed_while_loading(good: LoadSettings) -> None:
    with EngineClient() as client:
        wait_for(client, Ready)
        client.load(good)
        kill(client.pid)  # the Load is on its way or being loaded
        seen = wait_for(client, Crashed)
        crashed = seen[-1]
        assert isinstance(crashed, Crashed)
        assert "stopped unexpectedly (SIGKILL)" in crashed.message and "restarted" in crashed.message
        if not any(isinstance(e, Loaded) for e in seen):  # killed before it answered
            assert "while loading good.gguf" in crashed.message
        assert client.model is None and client.crashes == 1
        still_serves(client, good)


def test_killed_right_after_loaded(good: LoadSettings) -> None:
    with EngineClient() as client:
        client.load_model(good, timeout=60)
        first = client.pid
        kill(first)
        crashed = wait_for(client, Crashed)[-1]
        assert isinstance(crashed, Crashed)
        assert "(SIGKILL)" in crashed.message and "Tiny Test Model is no longer loaded" in crashed.message
        assert "ran out of memory" in crashed.message  # what a user can try after a kill
        assert client.pid not in (None, first)
        still_serves(client, good)


def test_killed_mid_stream(good: LoadSettings) -> None:
    with EngineClient() as client:
        client.load_model(good, timeout=60)
        pieces = client.stream("hello", (), LONG, timeout=60)
        assert next(pieces)
        kill(client.pid)
        with pytest.raises(EngineError, match=r"SIGKILL\) while generating a reply") as caught:
            for _ in pieces:
                pass
        assert "no longer loaded" in str(caught.value)
        still_serves(client, good)


def test_killed_again_while_the_restart_is_starting(good: LoadSettings) -> None:
    with EngineClient() as client:
        client.load_model(good, timeout=60)
        kill(client.pid)
        seen = wait_for(client, Crashed)
        restarted = client.pid  # started before the crash was reported: most likely still importing
        kill(restarted)
        seen += wait_for(client, Crashed)
        crashed = seen[-1]
        assert isinstance(crashed, Crashed)
        assert "(SIGKILL)" in crashed.message and "restarted" in crashed.message
        if not any(isinstance(e, Ready) and e.pid == restarted for e in seen):  # it had not started
            assert "(SIGKILL) while starting" in crashed.message
        assert client.crashes == 2 and client.pid not in (None, restarted)
        still_serves(client, good)


def test_a_crash_is_blamed_on_the_command_in_progress(tmp_path: Path, good: LoadSettings) -> None:
    """Not on the last one sent; the commands queued behind it are lost with that worker, and a load
    sent on hearing of the crash reaches the fresh one (started before the crash is reported)."""
    crasher = LoadSettings(str(write_tiny_gguf(tmp_path / "crasher.gguf", duplicate_token=True)), n_ctx=256)
    with EngineClient() as client:
        for _ in range(3):
            client.load(crasher)
            client.load(good)  # queued behind the crash
            crashed = wait_for(client, Crashed)[-1]
            assert isinstance(crashed, Crashed) and "GGML_ASSERT" in crashed.message
            assert "crasher.gguf" in crashed.message and "/tmp/" not in crashed.message
            still_serves(client, good)
        assert client.crashes == 3


def test_a_stuck_worker_is_a_bounded_wait_with_a_clear_error(good: LoadSettings) -> None:
    with EngineClient() as client:
        wait_for(client, Ready)
        stuck = client.pid
        assert stuck is not None
        os.kill(stuck, signal.SIGSTOP)  # alive, says nothing, reads nothing
        started = time.monotonic()
        with pytest.raises(EngineError, match=r"did not finish within 2 s.*restarted the engine") as caught:
            client.load_model(good, timeout=2)
        assert caught.value.kind == "load"
        assert time.monotonic() - started < 10
        assert client.pid != stuck
        with pytest.raises(ProcessLookupError):
            os.kill(stuck, 0)  # killed and reaped, not left behind
        assert client.crashes == 0  # we ended it: not reported as a crash
        still_serves(client, good)
        # Closing with a stuck worker ends within its bound too.
        os.kill(client.pid or 0, signal.SIGSTOP)
        started = time.monotonic()
        client.close()
        assert time.monotonic() - started < 15


def test_a_worker_that_cannot_start_is_not_restarted_forever(
    tmp_path: Path, good: LoadSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken-llama"
    (broken / "llama_cpp").mkdir(parents=True)
    (broken / "llama_cpp" / "__init__.py").write_text(
        'raise ImportError("libllama.so: cannot open shared object file (a stand-in for a broken install)")\n')
    monkeypatch.setenv("PYTHONPATH", str(broken))
    with EngineClient() as client:
        crashes = [wait_for(client, Crashed)[-1] for _ in range(MAX_FAILED_STARTS)]
        assert all(isinstance(c, Crashed) and "while starting" in c.message for c in crashes)
        assert all("libllama.so: cannot open" in c.message for c in crashes if isinstance(c, Crashed))
        last = crashes[-1]
        assert isinstance(last, Crashed) and f"failed to start {MAX_FAILED_STARTS} times" in last.message
        assert "hearth --self-test" in last.message
        assert client.pid is None
        with pytest.raises(EngineError, match="did not answer"):
            client.next_event(1.0)  # no restart loop
        monkeypatch.delenv("PYTHONPATH")  # the install is mended: the next load starts a worker
        still_serves(client, good)


def test_a_restart_that_cannot_start_a_process_says_so(good: LoadSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    with EngineClient() as client:
        client.load_model(good, timeout=60)
        python = sys.executable
        monkeypatch.setattr(sys, "executable", "/nonexistent/python3")  # the restart's Popen fails
        kill(client.pid)
        crashed = wait_for(client, Crashed)[-1]
        assert isinstance(crashed, Crashed)
        assert "(SIGKILL). Hearth could not start its model engine" in crashed.message
        assert "load the model again" in crashed.message
        assert client.pid is None
        with pytest.raises(EngineError, match="could not start its model engine"):
            client.load(good)  # still no Python to run: said at once, not a silent wait
        monkeypatch.setattr(sys, "executable", python)
        still_serves(client, good)


def test_a_failing_event_handler_does_not_stop_the_events(good: LoadSettings) -> None:
    seen: list[Event] = []

    def handler(event: Event) -> None:
        seen.append(event)
        if isinstance(event, Ready):
            raise RuntimeError("a front end's bug")

    with EngineClient(handler) as client:
        client.load(good)
        deadline = time.monotonic() + 60
        while not any(isinstance(e, Loaded) for e in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(isinstance(e, Ready) for e in seen) and any(isinstance(e, Loaded) for e in seen)
        client.generate("hello", (), SamplingSettings(temperature=0, max_tokens=4))
        while not any(isinstance(e, Tokens) for e in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(isinstance(e, Tokens) for e in seen)
