"""The Qt-free client of the llama.cpp worker process: commands out, events in, restart after a crash."""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar, cast

from app.engine.protocol import (
    Command,
    Crashed,
    Done,
    EngineError,
    Error,
    Event,
    Generate,
    GenerationStats,
    Load,
    Loaded,
    LoadSettings,
    ModelInfo,
    ProtocolError,
    Ready,
    SamplingSettings,
    Shutdown,
    Stop,
    Tokens,
    Unload,
    Unloaded,
    read_frame,
    write_frame,
)

EventHandler = Callable[[Event], None]
E = TypeVar("E")


def worker_command() -> list[str]:
    """How to start the worker: this Python running ``app.engine.worker``."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--engine-worker"]
    return [sys.executable, "-m", "app.engine.worker"]


def _signal_name(code: int | None) -> str:
    if code is None or code >= 0:
        return f"exit code {code}"
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class _Process:
    """One running worker with its reader threads."""

    def __init__(self, client: EngineClient) -> None:
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self.popen = subprocess.Popen(
            worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env,
        )
        self.stderr_tail: deque[str] = deque(maxlen=30)
        self.closing = False
        self.client = client
        self.write_lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._read_events, name="engine-events", daemon=True),
            threading.Thread(target=self._read_stderr, name="engine-stderr", daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def send(self, command: Command) -> None:
        stdin = cast(IO[bytes], self.popen.stdin)
        # A dead worker: the event reader sees it and reports the crash.
        with self.write_lock, contextlib.suppress(BrokenPipeError, OSError, ValueError):
            write_frame(stdin, command)

    def _read_stderr(self) -> None:
        stream = cast(IO[bytes], self.popen.stderr)
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip()
            if line:
                self.stderr_tail.append(line)

    def _read_events(self) -> None:
        stream = cast(IO[bytes], self.popen.stdout)
        while True:
            try:
                event = read_frame(stream)
            except (ProtocolError, OSError, EOFError, ValueError):
                event = None
            if event is None:
                break
            self.client._deliver(cast(Event, event))
        code = self.popen.wait()
        if not self.closing:
            time.sleep(0.05)  # let the stderr reader catch the last words
            self.client._worker_died(self, code)

    def crash_detail(self) -> str:
        lines = list(self.stderr_tail)
        telling = [ln for ln in lines if any(w in ln for w in ("GGML_ASSERT", "error", "Error", "failed", "abort"))]
        return (telling or lines or [""])[-1][:400]

    def terminate(self, timeout: float = 5.0) -> None:
        self.closing = True
        self.send(Shutdown())
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        # The readers end at EOF; wait for them so none delivers events after close().
        for thread in self.threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


def _remote_crash(rpc: Sequence[str], doing: str, model: ModelInfo | None, stderr: Sequence[str]) -> str:
    """With remote machines in use, name the one that went away (llama.cpp aborts the worker)."""
    if not rpc:
        return ""
    from app.engine.rpc import unreachable

    gone = unreachable(rpc)
    said_so = any("RPC" in line for line in stderr)
    if not gone and not said_so:
        return ""
    who = ", ".join(gone or rpc)
    lost = (f"Lost the remote machine {who}" if gone else
            f"One of the remote machines ({who}) stopped answering")
    while_doing = f" while {doing}" if doing else ""
    what = f"{model.name} is no longer loaded" if model else "the model is not loaded"
    return (f"{lost}{while_doing}: its rpc-server stopped or the network dropped. Hearth restarted the "
            f"engine and {what}: start `hearth rpc-server` there again and reload, or remove that "
            "machine (Settings › Remote machines, or leave out --rpc) to chat on this machine alone.")


class EngineClient:
    """Start and talk to the worker process; every event goes to ``on_event``.

    ``on_event`` runs on a reader thread. Without one, events queue up for the
    blocking helpers (:meth:`load_model`, :meth:`stream`), which the CLI and tests use.
    After a crash the client starts a fresh, empty worker and reports :class:`Crashed`.
    """

    def __init__(self, on_event: EventHandler | None = None) -> None:
        self.on_event = on_event
        self.events: queue.Queue[Event] = queue.Queue()
        self._ids = itertools.count(1)
        self._last_request = 0
        self._lock = threading.Lock()
        self._doing = "starting"
        self.crashes = 0
        self.model: ModelInfo | None = None
        self.last_stats: GenerationStats | None = None
        self.rpc: tuple[str, ...] = ()  # remote machines of the latest load
        self._process: _Process | None = None
        self._process = _Process(self)

    # ---- plumbing ---------------------------------------------------------------------

    def _deliver(self, event: Event) -> None:
        if isinstance(event, Loaded):
            self.model = event.info
        elif isinstance(event, Done):
            self.last_stats = event.stats
        if isinstance(event, Loaded | Done | Error | Unloaded):
            self._doing = ""
        if self.on_event is not None:
            self.on_event(event)
        else:
            self.events.put(event)

    def _worker_died(self, dead: _Process, code: int | None) -> None:
        if self._process is not dead:
            return
        remote = _remote_crash(self.rpc, self._doing, self.model, dead.stderr_tail)
        with self._lock:
            if self._process is not dead:
                return
            self.crashes += 1
            was_doing, model = self._doing, self.model
            detail = dead.crash_detail()
            self.model = None
            self.rpc = ()  # a fresh worker has no remote machines registered
            self._process = _Process(self)
        if remote:
            self._deliver(Crashed(remote, code))
            return
        message = f"The model engine stopped unexpectedly ({_signal_name(code)})"
        if was_doing:
            message += f" while {was_doing}"
        if detail:
            message += f": {detail}"
        message += ". Hearth restarted it"
        if model:
            message += f"; {model.name} is no longer loaded"
        self._deliver(Crashed(message + ".", code))

    @property
    def pid(self) -> int | None:
        return self._process.popen.pid if self._process else None

    def send(self, command: Command) -> None:
        process = self._process
        if process is None:
            raise EngineError("the engine is closed")
        process.send(command)

    # ---- commands ---------------------------------------------------------------------

    def load(self, settings: LoadSettings) -> None:
        self._doing = f"loading {Path(settings.path).name}"
        self.rpc = settings.rpc
        self.send(Load(settings))

    def generate(
        self,
        prompt: str,
        stop: Sequence[str] = (),
        sampling: SamplingSettings | None = None,
        chat_id: str = "default",
    ) -> int:
        request_id = self._last_request = next(self._ids)
        self._doing = "generating a reply"
        self.send(Generate(request_id, prompt, tuple(stop), sampling or SamplingSettings(), chat_id))
        return request_id

    def stop(self, request_id: int | None = None) -> None:
        """Stop a reply now (the latest by default), also during prompt evaluation."""
        self.send(Stop(request_id if request_id is not None else self._last_request))

    def unload(self) -> None:
        self.model = None
        self.send(Unload())

    def close(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            process.terminate()

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    # ---- blocking helpers (no on_event) ---------------------------------------------------

    def next_event(self, timeout: float | None = None) -> Event:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise EngineError(f"the engine did not answer within {timeout:.0f} s") from None

    def _until(self, kinds: tuple[type, ...], timeout: float | None) -> Event:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            event = self.next_event(left)
            if isinstance(event, kinds):
                return event

    def load_model(self, settings: LoadSettings, timeout: float = 300.0) -> ModelInfo:
        """Load and wait; raise EngineError (``kind`` load/memory) or on a crash."""
        self.load(settings)
        event = self._until((Loaded, Error, Crashed), timeout)
        if isinstance(event, Loaded):
            return event.info
        if isinstance(event, Error):
            raise EngineError(event.message, event.kind)
        assert isinstance(event, Crashed)
        raise EngineError(event.message, "load")

    def stream(
        self,
        prompt: str,
        stop: Sequence[str] = (),
        sampling: SamplingSettings | None = None,
        chat_id: str = "default",
        timeout: float = 300.0,
    ) -> Iterator[str]:
        """Yield reply text as it streams; afterwards ``last_stats`` holds the figures.

        Closing the generator early (``break``) stops the reply in the worker.
        """
        request_id = self.generate(prompt, stop, sampling, chat_id)
        finished = False
        try:
            while True:
                event = self.next_event(timeout)
                if isinstance(event, Tokens) and event.request_id == request_id:
                    if event.text:
                        yield event.text
                elif isinstance(event, Done) and event.request_id == request_id:
                    finished = True
                    return
                elif isinstance(event, Error) and event.request_id in (request_id, None):
                    finished = True
                    raise EngineError(event.message, event.kind)
                elif isinstance(event, Crashed):
                    finished = True
                    raise EngineError(event.message, "generate")
                elif isinstance(event, Unloaded | Ready):
                    continue
        finally:
            if not finished:
                self.stop(request_id)
                self._drain(request_id)

    def _drain(self, request_id: int, timeout: float = 30.0) -> None:
        """After an early stop, consume events up to this request's end."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            if isinstance(event, Done | Error) and getattr(event, "request_id", None) == request_id:
                return
            if isinstance(event, Crashed):
                return
