"""The window's engine link (the Qt face of the engine controller): signals in a real event loop,
tokens coalesced per frame, stop and crash reported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.engine.client import EngineClient
from app.engine.protocol import GenerationStats, LoadSettings, ModelInfo, SamplingSettings
from app.ui.engine.bench_probe import StallMeter
from app.ui.engine.engine_link import EngineLink
from tests.engine.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.slow

LONG = SamplingSettings(temperature=0, repeat_penalty=1.0, max_tokens=400, ignore_eos=True)


@pytest.fixture
def adapter(qtbot: QtBot) -> Iterator[EngineLink]:
    engine = EngineLink()
    yield engine
    engine.shutdown()


def load(qtbot: QtBot, adapter: EngineLink, path: Path, n_ctx: int = 512) -> ModelInfo:
    with qtbot.waitSignal(adapter.loaded, timeout=60_000) as blocker:
        adapter.load_settings(LoadSettings(str(path), n_ctx=n_ctx, n_threads=2))
    info: ModelInfo = blocker.args[0]
    return info


def test_tokens_arrive_coalesced_and_complete(qtbot: QtBot, adapter: EngineLink, tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "tiny.gguf")
    assert load(qtbot, adapter, model).n_layer == 2
    chunks: list[str] = []
    adapter.tokens.connect(lambda _request, text: chunks.append(text))
    meter = StallMeter()
    meter.start()
    with qtbot.waitSignal(adapter.done, timeout=60_000) as blocker:
        adapter.generate("hello world", (), LONG)
    meter.stop()
    stats: GenerationStats = blocker.args[1]
    assert stats.generated_tokens == 400
    assert adapter.delivered_tokens == 400
    # A tiny model makes hundreds of tokens a second; the GUI gets about one signal a frame.
    assert 1 <= len(chunks) < 200
    assert meter.worst_ms < 200  # the event loop kept turning while tokens streamed
    with EngineClient() as client:
        client.load_model(LoadSettings(str(model), n_ctx=512, n_threads=2))
        direct = "".join(client.stream("hello world", (), LONG))
    assert "".join(chunks) == direct


def test_stop_ends_the_reply_with_finished(qtbot: QtBot, adapter: EngineLink, tmp_path: Path) -> None:
    load(qtbot, adapter, write_tiny_gguf(tmp_path / "tiny.gguf", context_length=8192), n_ctx=8192)
    endless = SamplingSettings(temperature=0.8, max_tokens=100_000, ignore_eos=True, seed=3)
    with qtbot.waitSignal(adapter.tokens, timeout=30_000):
        adapter.generate("hello", (), endless)
    assert adapter.busy
    with qtbot.waitSignal(adapter.done, timeout=10_000) as blocker:
        adapter.stop()
    stats: GenerationStats = blocker.args[1]
    assert stats.stop_reason == "stopped"
    assert stats.generated_tokens < 8000
    assert not adapter.busy


def test_crash_is_reported_and_a_good_model_loads_after(
    qtbot: QtBot, adapter: EngineLink, tmp_path: Path
) -> None:
    crasher = write_tiny_gguf(tmp_path / "crasher.gguf", duplicate_token=True)
    with qtbot.waitSignal(adapter.crashed, timeout=60_000) as blocker:
        adapter.load_settings(LoadSettings(str(crasher), n_ctx=256))
    assert "restarted" in blocker.args[0]
    assert load(qtbot, adapter, write_tiny_gguf(tmp_path / "good.gguf")).n_layer == 2


def test_load_error_is_failed_not_crashed(qtbot: QtBot, adapter: EngineLink, tmp_path: Path) -> None:
    noise = tmp_path / "noise.gguf"
    noise.write_bytes(b"\x00" * 4096)
    with qtbot.waitSignal(adapter.load_failed, timeout=60_000) as blocker:
        adapter.load_settings(LoadSettings(str(noise), n_ctx=256))
    assert "not a GGUF" in blocker.args[0]
