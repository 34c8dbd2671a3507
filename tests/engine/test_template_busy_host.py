"""A template's time limit is its own: on a busy machine, in an app with a large heap, a fine
template is never stopped for time that went to the host (collecting garbage, returning heap,
starting the template process)."""

from __future__ import annotations

import gc
import shlex
import sys
import time
from typing import Any

import pytest

import app.templates.environment as environment
import app.templates.sandbox as sandbox_module
from app.templates.environment import hearth_environment, render_bounded
from app.templates.prompt import Message, PromptTemplate
from app.templates.sandbox import IsolatedFailure, TemplateSandbox

CONTEXT = {"messages": [{"role": "user", "content": "hi"}], "system_message": "Be brief."}
SOURCE = "{% for m in messages %}{{ system_message }} USER: {{ m.content }} ASSISTANT:{% endfor %}"


def test_no_garbage_collection_runs_inside_a_render() -> None:
    """A collection of the host's heap (seconds in a long-running app) must not land in the render:
    with the collector primed to run on almost every allocation, none starts while the template runs."""
    collections: list[str] = []

    def note(phase: str, _info: dict[str, Any]) -> None:
        tracer = sys.gettrace()  # the render's watchdog while the template runs
        if phase == "start" and isinstance(getattr(tracer, "__self__", None), environment._Watchdog):
            collections.append(phase)

    template = hearth_environment().from_string(SOURCE)
    threshold = gc.get_threshold()
    gc.callbacks.append(note)
    gc.set_threshold(1)
    try:
        for strict in (False, True):
            collections.clear()
            prompt = render_bounded(template, CONTEXT, strict_memory=strict)
            assert prompt == "Be brief. USER: hi ASSISTANT:"
            assert collections == [], f"{len(collections)} collections ran inside the render"
        assert gc.isenabled()  # and the collector runs again afterwards
    finally:
        gc.callbacks.remove(note)
        gc.set_threshold(*threshold)


def test_preparing_the_heap_does_not_count_as_the_render_s_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Returning freed heap to the OS took seconds in a test process with a large heap, and used to
    start the template's clock: a two-line template was then 'stopped: it ran longer than 3 s'."""
    real = environment._return_free_heap

    def slow_host() -> None:  # a host whose heap takes longer to tidy than the whole time limit
        time.sleep(0.6)
        real()

    monkeypatch.setattr(environment, "_return_free_heap", slow_host)
    template = hearth_environment().from_string(SOURCE)
    assert render_bounded(template, CONTEXT, time_limit_s=0.5, strict_memory=True) == "Be brief. USER: hi ASSISTANT:"


def test_a_catalogue_template_skips_the_heap_preparation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own catalogue's templates render in the app's process: no full collection or heap trim
    per reply (each one a pause that grows with the app's heap); a model file's template rendered
    in-process (isolation off) keeps the strict budget."""
    prepared: list[str] = []
    real = environment._return_free_heap
    monkeypatch.setattr(environment, "_return_free_heap", lambda: (prepared.append("x"), real())[1])
    ours = PromptTemplate(id="ours", name="Ours", jinja="{{ messages[0].content }}!")
    assert ours.render([Message("user", "hi")]) == "hi!"
    assert prepared == []
    monkeypatch.setenv("HEARTH_TEMPLATE_ISOLATION", "0")
    theirs = PromptTemplate(id="file", name="File", jinja="{{ messages[0].content }}?", origin="gguf")
    assert theirs.render([Message("user", "hi")]) == "hi?"
    assert prepared == ["x"]


def _slow_start(seconds: float) -> list[str]:
    """The real template process, started ``seconds`` late (as on a machine too busy to start it)."""
    inner = " ".join(shlex.quote(part) for part in [sys.executable, "-m", "app.templates.sandbox"])
    return ["sh", "-c", f"sleep {seconds}; exec {inner}"]


def test_a_slow_start_of_the_template_process_is_not_the_render_s_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_module, "sandbox_command", lambda: _slow_start(1.5))
    sandbox = TemplateSandbox(hard_timeout_s=1.0)
    try:
        assert sandbox.render("{{ messages[0].content }}!", "transformers", CONTEXT) == "hi!"
        assert sandbox.restarts == 0
    finally:
        sandbox.stop()


def test_a_template_process_that_never_starts_is_one_clear_line_and_the_next_try_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox_module, "sandbox_command", lambda: _slow_start(30))
    sandbox = TemplateSandbox(start_timeout_s=1.0)
    try:
        start = time.monotonic()
        with pytest.raises(IsolatedFailure, match="did not start") as caught:
            sandbox.render("{{ messages[0].content }}", "transformers", CONTEXT)
        assert time.monotonic() - start < 5 and "\n" not in str(caught.value)
        assert sandbox.pid is None
        monkeypatch.setattr(sandbox_module, "sandbox_command",
                            lambda: [sys.executable, "-m", "app.templates.sandbox"])
        assert sandbox.render("{{ messages[0].content }}", "transformers", CONTEXT) == "hi"
    finally:
        sandbox.stop()
