"""One running llama.cpp worker process: its pipes, a writer that never blocks the caller, bounded waits."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, cast

from app.engine.protocol import Command, Event, Ready, Shutdown, read_frame, write_frame

# After the worker's event stream ends, how long it may take to exit before it is killed.
EXIT_WAIT_S = 5.0
# How long the stderr reader may take to catch the last words of a dead worker.
STDERR_WAIT_S = 2.0
_TELLING = ("GGML_ASSERT", "error", "Error", "failed", "abort", "Killed")
_SOURCE_PATH = re.compile(r"\S*/([^/\s]+:\d+:)")  # the build folder before "llama-vocab.cpp:2544:"


def worker_command() -> list[str]:
    """How to start the worker: this Python running ``app.engine.worker``."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--engine-worker"]
    return [sys.executable, "-m", "app.engine.worker"]


def worker_environment() -> dict[str, str]:
    """This process's environment, plus what the worker needs.

    ggml's abort handler forks gdb to print a backtrace when gdb is installed: the dying worker then
    lives on, stopped under a debugger that inherits its command pipe, for seconds (tens of seconds on
    a busy machine), and 70 lines of backtrace push the failed assertion out of the stderr tail.
    ``HEARTH_ENGINE_BACKTRACE=1`` keeps that backtrace, for a developer.
    """
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    if not env.get("HEARTH_ENGINE_BACKTRACE"):
        env["GGML_NO_BACKTRACE"] = "1"
    return env


class WorkerProcess:
    """One worker and its three threads: commands out, events in, stderr kept for a crash message.

    ``on_event(process, event)`` runs on the event reader thread. When the event stream ends (the
    worker died, or it sent something that is not a frame) the worker is waited for (killed if it
    lingers), and ``on_exit(process, exit_code, broken)`` runs on the same thread, unless
    :meth:`terminate` asked for the end. No wait here is unbounded.
    """

    def __init__(self, on_event: Callable[[WorkerProcess, Event], None],
                 on_exit: Callable[[WorkerProcess, int | None, str], None]) -> None:
        self.popen = subprocess.Popen(
            worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=worker_environment(),
        )
        self.pid = self.popen.pid
        self.ready = False  # the worker said Ready: it started
        self.closing = False  # terminate() was asked: its end is not a crash
        self.stderr_tail: deque[str] = deque(maxlen=30)
        self._telling: deque[str] = deque(maxlen=5)  # the lines that explain a crash, kept apart
        self._on_event = on_event
        self._on_exit = on_exit
        self._outbox: queue.Queue[Command | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_commands, name="engine-commands", daemon=True)
        self._reader = threading.Thread(target=self._read_events, name="engine-events", daemon=True)
        self._stderr = threading.Thread(target=self._read_stderr, name="engine-stderr", daemon=True)

    def start(self) -> None:
        """Start the threads (after the owner has recorded this as its current process)."""
        for thread in (self._stderr, self._writer, self._reader):
            thread.start()

    # ---- commands out -------------------------------------------------------------------

    def send(self, command: Command) -> None:
        """Queue ``command``; the writer thread sends it (a worker that does not read never blocks us)."""
        self._outbox.put(command)

    def _write_commands(self) -> None:
        stdin = cast(IO[bytes], self.popen.stdin)
        while (command := self._outbox.get()) is not None:
            try:
                write_frame(stdin, command)
            except (OSError, ValueError):  # the worker is gone: the event reader reports it
                break
        with contextlib.suppress(OSError, ValueError):
            stdin.close()  # EOF: the worker's other way of knowing it should end

    # ---- events and stderr in -----------------------------------------------------------

    def _read_stderr(self) -> None:
        stream = cast(IO[bytes], self.popen.stderr)
        with contextlib.suppress(OSError, ValueError):
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip()
                if line:
                    self.stderr_tail.append(line)
                    if any(word in line for word in _TELLING):
                        self._telling.append(line)

    def _read_events(self) -> None:
        stream = cast(IO[bytes], self.popen.stdout)
        broken = ""
        while True:
            try:
                event = read_frame(stream)
            except Exception as exc:  # not a frame: nothing more from this worker can be trusted
                broken = f"it sent something that is not an event ({type(exc).__name__}: {exc})"
                break
            if event is None:
                break
            if isinstance(event, Ready):
                self.ready = True
            self._on_event(self, cast(Event, event))
        if broken:
            self.kill()
        code = self._wait_exit(EXIT_WAIT_S)
        self._stderr.join(STDERR_WAIT_S)  # its last words, for the crash message
        if not self.closing:
            self._on_exit(self, code, broken)

    def _wait_exit(self, timeout: float) -> int | None:
        """The exit code, killing the worker if it is still there after ``timeout``; None if it will not go."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def crash_detail(self) -> str:
        """The stderr line that best says why the worker died (a failed assertion, an error), or ''."""
        lines = list(self._telling) or list(self.stderr_tail)
        return _SOURCE_PATH.sub(r"\1", (lines or [""])[-1])[:400]

    # ---- ending ----------------------------------------------------------------------------

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.popen.kill()

    def terminate(self, timeout: float = EXIT_WAIT_S, graceful: bool = True) -> None:
        """End the worker (asked to shut down, killed after ``timeout``) and its threads, within bounds.

        Nothing it says afterwards is reported; ``graceful=False`` kills it at once (a stuck worker).
        """
        self.closing = True
        deadline = time.monotonic() + 2 * timeout + STDERR_WAIT_S
        if graceful:
            self.send(Shutdown())
        else:
            self.kill()
        self._outbox.put(None)
        self._wait_exit(timeout)
        for thread in (self._reader, self._stderr, self._writer):
            if thread.ident is not None and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        # A stream is closed only once its thread is done with it (closing a file that a blocked
        # reader holds would wait for that reader).
        for stream, thread in ((self.popen.stdout, self._reader), (self.popen.stderr, self._stderr)):
            if stream is not None and not thread.is_alive():
                with contextlib.suppress(OSError, ValueError):
                    stream.close()
