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
