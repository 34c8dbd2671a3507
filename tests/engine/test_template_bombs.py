"""Hostile and runaway chat templates end fast with one clear line, within a memory budget, executing nothing."""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import pytest

from app.catalog import load_catalog
from app.engine.chat_format import resolve_chat_format
from app.engine.template_env import MAX_OUTPUT_CHARS, TIME_LIMIT_S
from app.engine.template_sandbox import HARD_TIMEOUT_S, IsolatedFailure, TemplateSandbox, shared_sandbox
from app.engine.templates import Message, PromptTemplate, TemplateError
from tests.engine.template_bombs import bombs
from tests.engine.tiny_gguf import write_tiny_gguf

TIME_BUDGET_S = TIME_LIMIT_S + 3.0  # the render limit plus slack for a loaded 2-core machine
MEMORY_BUDGET = 300 * 1024 * 1024
SAMPLE = 160  # amplifier x size x disguise combinations per run (seeded), plus every runaway


def _render(source: str, dialect: str) -> tuple[str, float, int]:
    """("ok" | "error", seconds, peak bytes allocated by Python during the render)."""
    template = PromptTemplate(id="bomb", name="Bomb", jinja=source, dialect=dialect, origin="gguf")
    tracemalloc.reset_peak()
    start = time.monotonic()
    outcome = "ok"
    try:
        prompt = template.render([Message("user", "hi")], model_name="Bomb Model")
        assert len(prompt) <= MAX_OUTPUT_CHARS
    except TemplateError as exc:
        text = str(exc)
        assert "\n" not in text and "Traceback" not in text and len(text) < 500, text
        assert "Bomb" in text, text
        outcome = "error"
    elapsed = time.monotonic() - start
    return outcome, elapsed, tracemalloc.get_traced_memory()[1]


@pytest.mark.slow
@pytest.mark.parametrize("dialect", ["transformers", "hearth"])
def test_generated_template_bombs_stay_within_budget(dialect: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process (isolation off), so that tracemalloc sees every allocation of each case."""
    monkeypatch.setenv("HEARTH_TEMPLATE_ISOLATION", "0")
    tracemalloc.start()
    results: dict[str, int] = {"ok": 0, "error": 0}
    try:
        for bomb in bombs(limit=SAMPLE):
            outcome, elapsed, peak = _render(bomb.source, dialect)
            assert elapsed < TIME_BUDGET_S, f"{bomb.name} took {elapsed:.1f} s: {bomb.source}"
            assert peak < MEMORY_BUDGET, f"{bomb.name} allocated {peak >> 20} MB: {bomb.source}"
            results[outcome] += 1
    finally:
        tracemalloc.stop()
    print(f"\n{dialect}: {sum(results.values())} template bombs, {results['error']} stopped with one line, "
          f"{results['ok']} rendered within the limits")
    assert results["error"] > 0.8 * sum(results.values())


NAMED = {
    "nested-range": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                     "longer than"),
    "string-times-billion": ("{{ 'x' * 10**9 }}", "repeated string"),
    "lipsum-million": ("{{ lipsum(10**6) }}", "lipsum"),
    "center-billion": ("{{ 'x'.center(10**9) }}", "centred width"),
    "percent-width": ("{{ '%999999999d' % 1 }}", "format width"),
    "format-width": ("{{ '{:>999999999}'.format('x') }}", "format width"),
    "recursion": ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursed too deeply"),
    "overflow": ("{{ (2 ** 2000000) }}", "power"),
    "zero-division": ("{{ 1 / 0 }}", "ZeroDivisionError"),
    "huge-int-text": ("{{ (10**5000)|string }}", "too long to print"),
    "undefined-inf": ("{{ inf + 1 }}", "'inf' is undefined"),
    "output-flood": ("{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}", "output passed"),
    "memory-growth": ("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}"
                      "{% set ns.l = ns.l + ['x' * 1000000 ~ i] %}{% endfor %}", "MB of memory"),
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_template_bombs_give_one_clear_line(name: str) -> None:
    source, words = NAMED[name]
    start = time.monotonic()
    with pytest.raises(TemplateError) as caught:
        PromptTemplate(id="bomb", name="Bomb", jinja=source, dialect="transformers", origin="gguf").render(
            [Message("user", "hi")], model_name="Bomb Model")
    assert time.monotonic() - start < TIME_BUDGET_S
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bomb_inside_a_gguf_is_reported_and_executes_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    source = ("{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}"
              "{{ 'x' * 10**9 }}")
    path = write_tiny_gguf(tmp_path / "bomb.gguf", chat_template=source, name="Bomb")
    fmt = resolve_chat_format(path, load_catalog())
    with pytest.raises(TemplateError, match="Bomb"):
        fmt.render([Message("user", "hi")])
    assert not marker.exists()


@pytest.mark.slow
def test_generated_template_bombs_in_the_sandbox_process_stay_within_budget() -> None:
    """Through the child process (the default for file templates): each case within its time, the
    child's peak resident memory bounded, and the child still serving afterwards."""
    sandbox = shared_sandbox()
    stopped = 0
    for bomb in bombs(limit=40, seed=7):
        start = time.monotonic()
        try:
            PromptTemplate(id="bomb", name="Bomb", jinja=bomb.source, dialect="transformers", origin="gguf").render(
                [Message("user", "hi")], model_name="Bomb Model")
        except TemplateError as exc:
            assert "\n" not in str(exc) and "Bomb Model" in str(exc)
            stopped += 1
        assert time.monotonic() - start < HARD_TIMEOUT_S + 2.0, bomb.name
    pid = sandbox.pid
    assert pid is not None
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        peak_kb = int(next(line for line in status.read_text().splitlines() if line.startswith("VmHWM")).split()[1])
        assert peak_kb * 1024 < 450 * 1024 * 1024, f"the template process peaked at {peak_kb >> 10} MB"
    assert stopped > 30
    ok = PromptTemplate(id="ok", name="Fine", jinja="{{ messages[0].content }}", dialect="transformers",
                        origin="gguf")
    assert ok.render([Message("user", "still here")]) == "still here"


def test_a_runaway_template_is_killed_at_the_hard_limit_and_the_next_render_works() -> None:
    sandbox = TemplateSandbox(hard_timeout_s=1.0)  # shorter than the child's own 3 s watchdog
    try:
        source = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
        start = time.monotonic()
        with pytest.raises(IsolatedFailure, match="ran longer than 1 s"):
            sandbox.render(source, "transformers", {"messages": []})
        assert time.monotonic() - start < 3.0
        assert sandbox.restarts == 1 and sandbox.pid is None
        assert sandbox.render("{{ messages[0].content }}!", "transformers",
                              {"messages": [{"role": "user", "content": "hi"}]}) == "hi!"
    finally:
        sandbox.stop()


def test_file_templates_render_in_the_child_process(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "own.gguf", chat_template="{{ messages[0].content }}|{{ bos_token }}",
                           name="Own")
    fmt = resolve_chat_format(path, load_catalog())
    assert fmt.render([Message("user", "hi")]) == "hi|<s>"
    assert shared_sandbox().pid is not None and shared_sandbox().pid != os.getpid()


def test_escape_sequences_in_a_template_error_never_reach_the_terminal() -> None:
    source = "{{ raise_exception('\\x1b]0;pwned\\x07\\x1b[2J gone') }}"
    with pytest.raises(TemplateError) as caught:
        PromptTemplate(id="esc", name="Esc", jinja=source, dialect="transformers", origin="gguf").render(
            [Message("user", "hi")], model_name="Esc Model")
    text = str(caught.value)
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b]0;pwned\\x07\\x1b[2J gone" in text
