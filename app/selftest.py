"""``hearth --self-test``: start offscreen, load the catalogue and a model, generate, store a chat, report."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from app import __version__
from app.errors import HearthError

T = TypeVar("T")
PROMPT = "Say hello in five words."
TOKENS = 8


class SelfTestFailed(HearthError):
    """One step of the self-test failed; the message names the step."""


@dataclass
class SelfTestReport:
    """What each step found, for the one-line report."""

    facts: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"Hearth {__version__} self-test passed: " + " · ".join(self.facts)


def _step(name: str, action: Callable[[], T]) -> T:
    try:
        return action()
    except SelfTestFailed:
        raise
    except Exception as exc:  # every failure becomes the step's report
        raise SelfTestFailed(f"self-test failed at step '{name}': {type(exc).__name__}: {exc}") from exc


def _starter_path() -> Path:
    from app.catalog import load_catalog
    from app.catalog.starter import starter_path, starter_variant
    from app.paths import app_dirs

    starter = load_catalog().starter()
    if starter is None:
        raise SelfTestFailed("self-test failed at step 'model': the catalogue names no starter model")
    path = starter_path(app_dirs().models, starter_variant(starter))
    if not path.is_file():
        raise SelfTestFailed(
            f"self-test failed at step 'model': the starter model is not installed ({path}); "
            "run `hearth starter` or pass --model PATH"
        )
    return path


def _qt(report: SelfTestReport) -> None:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from app.ui.application import open_window_offscreen

    pages = open_window_offscreen()
    report.facts.append(f"window with {len(pages)} pages ({', '.join(pages)})")


def _generate(report: SelfTestReport, path: Path) -> str:
    from app.catalog import load_catalog
    from app.engine.chat_format import resolve_chat_format
    from app.engine.client import EngineClient
    from app.engine.offload import detect_gpu
    from app.engine.protocol import LoadSettings, SamplingSettings
    from app.engine.templates import Message

    chat_format = resolve_chat_format(path, load_catalog())
    prompt = chat_format.render([Message("user", PROMPT)])
    client = EngineClient()
    try:
        started = time.perf_counter()
        client.load_model(LoadSettings(path=str(path), n_ctx=512), timeout=120)
        load_s = time.perf_counter() - started
        sampling = SamplingSettings(temperature=0.0, max_tokens=TOKENS, ignore_eos=True, seed=1)
        reply = "".join(client.stream(prompt, chat_format.stop, sampling, timeout=120))
        stats = client.last_stats
    finally:
        client.close()
    if stats is None or stats.generated_tokens == 0:
        raise SelfTestFailed("self-test failed at step 'generate': the model produced no tokens")
    report.facts.append(f"{path.name} loaded in {load_s:.1f} s on {backend_name(detect_gpu().offload)}")
    report.facts.append(f"{stats.generated_tokens} tokens at {stats.decode_tps:.0f} tok/s")
    return reply


def _chat_round_trip(report: SelfTestReport, reply: str) -> None:
    from app.chats.store import ChatStore

    with tempfile.TemporaryDirectory(prefix="hearth-selftest-") as folder:
        db = Path(folder) / "chats.sqlite3"
        store = ChatStore(db)
        chat = store.create_chat("Self-test")
        store.add_message(chat.id, "user", PROMPT)
        store.add_message(chat.id, "assistant", reply)
        store.close()
        reopened = ChatStore(db)
        try:
            contents = [(m.role, m.content) for m in reopened.messages(chat.id)]
        finally:
            reopened.close()
    if contents != [("user", PROMPT), ("assistant", reply)]:
        raise SelfTestFailed(f"self-test failed at step 'chats': read back {contents!r}")
    report.facts.append("chat written and read back")


def backend_name(offload: bool | None = None) -> str:
    """The llama.cpp backend this build runs on: CPU, CUDA, Metal or Vulkan."""
    try:
        import llama_cpp
    except ImportError:
        return "no llama.cpp"
    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    names = " ".join(p.name.lower() for p in lib_dir.glob("*")) if lib_dir.is_dir() else ""
    if offload is None:
        from app.engine.offload import build_offloads

        offload = build_offloads()
    for marker, label in (("cuda", "CUDA"), ("metal", "Metal"), ("vulkan", "Vulkan"), ("hip", "ROCm")):
        if marker in names:
            return label if offload else f"CPU ({label} build, no GPU found)"
    return "Metal" if offload and sys.platform == "darwin" else ("GPU" if offload else "CPU")


def run_self_test(model: str | None) -> SelfTestReport:
    """Run every step; raise SelfTestFailed naming the first that fails."""
    from app.catalog import load_catalog

    report = SelfTestReport()
    catalog = _step("catalogue", load_catalog)
    report.facts.append(f"catalogue {len(catalog.models)} models")
    _step("qt", lambda: _qt(report))
    path = Path(model).expanduser() if model else _step("model", _starter_path)
    if not path.is_file():
        raise SelfTestFailed(f"self-test failed at step 'model': {path} does not exist")
    reply = _step("generate", lambda: _generate(report, path))
    _step("chats", lambda: _chat_round_trip(report, reply))
    return report
