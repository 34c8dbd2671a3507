"""The engine controller on the real llama.cpp worker: one current request, stale results dropped, one batch."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.engine.client import EngineClient
from app.engine.controller import EngineController
from app.engine.interface import Engine
from app.engine.protocol import Done, Event, Loaded, LoadSettings, SamplingSettings


def test_the_local_worker_client_is_an_engine() -> None:
    client = EngineClient()
    try:
        assert isinstance(client, Engine)
    finally:
        client.close()


@pytest.mark.slow
def test_a_superseded_reply_is_dropped_and_tokens_are_batched_once(smollm2: Path) -> None:
    events: list[Event] = []
    arrived = threading.Condition()

    def on_event(event: Event) -> None:
        with arrived:
            events.append(event)
            arrived.notify_all()

    client = EngineClient()
    controller = EngineController(client, on_event)
    try:
        client.load(LoadSettings(str(smollm2), n_ctx=512, n_threads=2))
        with arrived:
            assert arrived.wait_for(lambda: any(isinstance(e, Loaded) for e in events), timeout=120)
        greedy = SamplingSettings(temperature=0.0, max_tokens=6)
        first = controller.generate("<|im_start|>user\nCount to ten.<|im_end|>\n<|im_start|>assistant\n",
                                    (), greedy, "a")
        second = controller.generate("<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n",
                                     (), SamplingSettings(temperature=0.0, max_tokens=4), "b")
        assert second != first and controller.request_id == second
        with arrived:
            assert arrived.wait_for(lambda: any(isinstance(e, Done) for e in events), timeout=300)
        batch = controller.drain()
        done = [e for e in events if isinstance(e, Done)]
        assert [d.request_id for d in done] == [second], "the first reply's end is dropped"
        assert batch is not None and batch.request_id == second and batch.text
        assert batch.count <= 4, "only the current reply's tokens are in the batch"
        assert controller.drain() is None, "drained once"
    finally:
        client.close()


@pytest.mark.parametrize("wake_each", [False, True])
def test_wake_comes_once_a_reply_or_whenever_text_waits(tmp_path: Path, wake_each: bool) -> None:
    """The window drains once a frame and is woken only for the first words; the API server drains
    only when woken, so it is woken whenever text arrives after a drain. Either way every token of
    the reply reaches the front end once, and the engine starts on first use."""
    from tests.engine.tiny_gguf import write_tiny_gguf

    model = write_tiny_gguf(tmp_path / "tiny.gguf")
    done = threading.Event()
    wakes: list[str] = []
    pieces: list[str] = []
    counted = [0]

    def wake() -> None:
        wakes.append("wake")
        if wake_each:  # drain as the API server does: on the engine's thread here, which is allowed
            batch = controller.drain()
            if batch is not None:
                pieces.append(batch.text)
                counted[0] += batch.count

    def on_event(event: Event) -> None:
        if isinstance(event, (Done, Loaded)):
            done.set()

    controller = EngineController(on_event=on_event, wake=wake, wake_each=wake_each)
    assert not controller.started
    try:
        controller.load(LoadSettings(str(model), n_ctx=256, n_threads=1))
        assert controller.started and done.wait(60)
        done.clear()
        controller.generate("hello", (), SamplingSettings(temperature=0, max_tokens=40, ignore_eos=True), "w")
        assert done.wait(60)
        batch = controller.drain()
        if batch is not None:
            pieces.append(batch.text)
            counted[0] += batch.count
        assert counted[0] == 40
        if wake_each:
            assert len(wakes) > 1
        else:
            assert wakes == ["wake"]
    finally:
        controller.close()
    assert not controller.started
