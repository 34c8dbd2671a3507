"""A second launch hands its file to the running window instead of starting another (two real processes)."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtNetwork import QLocalSocket
from PySide6.QtWidgets import QApplication

from app.ui.single_instance import server_name

ROOT = Path(__file__).resolve().parents[2]


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HEARTH_HOME=str(home), QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    env.pop("HEARTH_STARTUP_PROBE", None)
    return env


class _Running:
    """The first Hearth, with its stderr lines collected on a thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "app"], env=env, cwd=ROOT,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_for_line(self, needle: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            seen.append(line)
            if needle in line:
                return line
        raise AssertionError(f"{needle!r} not printed by the first Hearth; it printed {seen}")


@pytest.fixture
def first(qapp: QApplication, hearth_home: Path) -> Iterator[_Running]:
    running = _Running(_env(hearth_home))
    name = server_name()
    deadline = time.monotonic() + 60
    while True:  # wait until the first instance listens (connecting only: no message is sent)
        assert running.process.poll() is None, "the first Hearth exited"
        probe = QLocalSocket()
        probe.connectToServer(name)
        if probe.waitForConnected(200):
            probe.disconnectFromServer()
            break
        assert time.monotonic() < deadline, "the first Hearth never started listening"
        time.sleep(0.2)
    yield running
    running.process.terminate()
    try:
        running.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        running.process.kill()
        running.process.wait()


@pytest.mark.slow
def test_second_launch_hands_the_file_over(first: _Running, hearth_home: Path, tmp_path: Path) -> None:
    model = tmp_path / "some model.gguf"
    model.write_bytes(b"GGUF" + bytes(64))
    started = time.monotonic()
    second = subprocess.run([sys.executable, "-m", "app", str(model)], env=_env(hearth_home), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "already running" in second.stderr
    assert time.monotonic() - started < 30
    line = first.wait_for_line("handed over by another launch")
    assert str(model.resolve()) in line
    assert first.process.poll() is None  # the first window is still there

    # A plain second launch brings the window to the front and exits too.
    again = subprocess.run([sys.executable, "-m", "app"], env=_env(hearth_home), cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert "brought its window to the front" in again.stderr


def test_missing_file_is_one_clear_line(hearth_home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.gguf"
    result = subprocess.run([sys.executable, "-m", "app", str(missing)], env=_env(hearth_home), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"hearth: error: {missing} does not exist, so Hearth cannot open it"]


def test_each_data_folder_has_its_own_instance(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "a"))
    a = server_name()
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "b"))
    assert server_name() != a
    assert len(a) < 60  # Unix socket paths are short


@pytest.mark.skipif(sys.platform == "win32", reason="named pipes leave no file behind")
def test_a_socket_left_by_a_crash_is_replaced(qapp: QApplication, hearth_home: Path) -> None:
    import socket

    from app.ui.single_instance import InstanceServer, hand_over

    name = server_name()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(name)  # bound, never listening, then gone: what a killed instance leaves
    stale.close()
    assert Path(name).exists()
    assert hand_over("/some/model.gguf") is False  # nobody answers: this launch starts its own window
    server = InstanceServer()
    try:
        assert server.listen()
    finally:
        server.close()
