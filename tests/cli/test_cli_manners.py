"""The command line's manners: help for every argument, the environment listed, completion, bars that fit."""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import build_parser
from app.cli.download_cmd import ProgressBar
from app.cli.environment import ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]
# Read by the code but only for measurements and tests, so not advertised.
INTERNAL = {"HEARTH_STARTUP_PROBE", "HEARTH_FAKE_FREE_BYTES"}


def _all_parsers(parser: argparse.ArgumentParser, name: str = "hearth") -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(name, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                found += _all_parsers(sub, f"{name} {sub_name}")
    return found


def test_every_positional_argument_has_help() -> None:
    parsers = _all_parsers(build_parser())
    assert len(parsers) > 8  # every subcommand and sub-subcommand was walked
    missing = [
        f"{name}: {action.metavar or action.dest}"
        for name, parser in parsers
        for action in parser._actions
        if not action.option_strings and not isinstance(action, argparse._SubParsersAction)
        and (not action.help or action.help == argparse.SUPPRESS)
    ]
    assert not missing, f"positional arguments without help: {missing}"


def test_help_lists_the_environment_variables(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for name in ("HEARTH_HOME", "HEARTH_MODELS_DIR", "HF_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_HUB_CACHE"):
        assert re.search(rf"^\s+{name}\s", text, re.M), name


def test_every_variable_the_code_reads_is_listed_and_every_listed_one_is_read() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "app").rglob("*.py")
                       if p.name != "environment.py")
    read = set(re.findall(r"""environ(?:\.get)?\(\s*["'](HEARTH_[A-Z0-9_]+)""", source))
    read |= set(re.findall(r"""environ\[["'](HEARTH_[A-Z0-9_]+)""", source))
    read |= set(re.findall(r"""_env\w*\(\s*["'](HEARTH_[A-Z0-9_]+)""", source))  # e.g. hub/limits.py's readers
    listed = {name for name, _ in ENVIRONMENT}
    assert read - INTERNAL <= listed, f"read but not in --help: {sorted(read - INTERNAL - listed)}"
    assert {n for n in listed if n.startswith("HEARTH_")} <= read, "listed in --help but never read"


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_shell_completion_script(shell: str) -> None:
    result = subprocess.run([sys.executable, "-m", "app", "--print-completion", shell], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "download" in result.stdout and "catalog" in result.stdout
    assert ("complete" in result.stdout) if shell == "bash" else ("#compdef" in result.stdout)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("columns", [40, 60, 80, 120, 200])
def test_progress_bar_fits_the_terminal(columns: int) -> None:
    stream = _Terminal()
    bar = ProgressBar(7_300_000_000, stream)
    bar.columns = columns
    bar.phase = "file 3 of 12: mistral-7b-openorca.Q4_K_M.gguf-split-b"
    for _ in range(5):
        bar.done += 1_234_567_890
        bar.draw()
    bar.close()
    redraws = stream.getvalue().split("\r")[1:]
    assert len(redraws) == 6
    for drawn in redraws:
        visible = drawn.replace("\x1b[K", "").rstrip("\n")
        assert 10 < len(visible) < columns, (columns, visible)
        assert not visible.endswith(" ")  # no padding: the rest of the line is erased instead
    assert "%" in redraws[-1]
    if columns >= 120:
        assert "[" + "#" * 20 in redraws[-1] and "ETA" in redraws[-1]


def test_progress_bar_reads_the_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "50")  # what shutil.get_terminal_size() falls back to
    stream = _Terminal()  # no real terminal behind it
    bar = ProgressBar(1000, stream)
    bar.add(500)
    bar.draw()
    assert all(len(line.replace("\x1b[K", "")) < 50 for line in stream.getvalue().split("\r")[1:])


def test_progress_bar_prints_plain_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    bar = ProgressBar(1000, stream)
    bar.done = 250
    bar.draw()
    assert stream.getvalue().endswith("\n") and "\r" not in stream.getvalue()
    assert " 25.0%" in stream.getvalue()
