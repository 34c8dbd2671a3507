"""The import-linter contracts in pyproject.toml hold, and they catch a loop between packages."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.paths import install_root

ROOT = install_root()
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT), "--config", str(tree / "pyproject.toml"), "--no-cache"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=120)


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "app", tree / "app", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


@pytest.fixture(scope="module", autouse=True)
def _needs_linter() -> None:
    if not LINT.exists():
        pytest.fail(f"{LINT} is missing: install the dev extra (pip install import-linter)")


def test_the_layers_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Hearth layers KEPT" in result.stdout
    assert "Core never imports Qt KEPT" in result.stdout


def test_a_loop_between_packages_breaks_the_contract(tmp_path: Path) -> None:
    """hub -> catalog was a loop in the first round; put it back and the build fails."""
    tree = _copy(tmp_path)
    plan = tree / "app" / "hub" / "plan.py"
    plan.write_text(plan.read_text(encoding="utf-8") + "\nfrom app.catalog.model import Variant  # noqa\n",
                    encoding="utf-8")
    result = _lint(tree)
    assert result.returncode != 0
    assert "Hearth layers BROKEN" in result.stdout
    assert "app.hub.plan -> app.catalog.model" in result.stdout


def test_qt_in_the_core_breaks_the_contract(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    units = tree / "app" / "units.py"
    units.write_text(units.read_text(encoding="utf-8") + "\nimport PySide6  # noqa\n", encoding="utf-8")
    result = _lint(tree)
    assert result.returncode != 0
    assert "Core never imports Qt BROKEN" in result.stdout


# -- one way off the GUI thread ----------------------------------------------------------------
UI = ROOT / "app" / "ui"
WORKERS = UI / "workers.py"
# A thread, a pool or a runnable started anywhere but app/ui/workers.py: a widget bringing its own way
# of running work back (results not dropped when superseded, threads that hold the app open...).
THREAD_STARTS = re.compile(r"threading\.Thread\b|\bThread\(|\bQThread\b|\bQThreadPool\b|\bQRunnable\b"
                           r"|ThreadPoolExecutor|threading\.Timer\b|QtConcurrent")


def own_threads(source: str) -> list[str]:
    """The lines of ``source`` that start work off the GUI thread on their own."""
    return [line.strip() for line in source.splitlines() if THREAD_STARTS.search(line)]


def test_the_window_runs_work_off_the_gui_thread_only_through_workers_py() -> None:
    found = {str(path.relative_to(ROOT)): lines for path in sorted(UI.rglob("*.py")) if path != WORKERS
             if (lines := own_threads(path.read_text(encoding="utf-8")))}
    assert found == {}, "use app.ui.workers (LatestWorker, create_worker) instead"


def test_the_thread_scan_catches_each_way_back() -> None:
    for line in ("threading.Thread(target=run, daemon=True).start()", "QThreadPool.globalInstance().start(f)",
                 "self.thread = QThread()", "class Job(QRunnable):", "from threading import Thread; Thread(target=f)",
                 "with ThreadPoolExecutor() as pool:", "class Poller(threading.Thread):"):
        assert own_threads(line) == [line], line
    assert own_threads("self.threads_box = QSpinBox()  # llama.cpp's threads\nevent = threading.Event()") == []
    assert own_threads(WORKERS.read_text(encoding="utf-8"))  # the one place allowed: the scan sees it
