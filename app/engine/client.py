"""The Qt-free client of the llama.cpp worker process: commands out, events in, restart after a crash."""

from __future__ import annotations

import contextlib
import itertools
import queue
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

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
    Ready,
    SamplingSettings,
    Stop,
    Tokens,
    Unload,
    Unloaded,
)
from app.engine.worker_process import WorkerProcess

EventHandler = Callable[[Event], None]
E = TypeVar("E")
# The longest any blocking helper waits for the worker's next word, unless told otherwise.
ANSWER_TIMEOUT_S = 300.0
# Workers in a row that may die before they have started before the client stops restarting them.
MAX_FAILED_STARTS = 3


def _signal_name(code: int | None) -> str:
    if code is None:
        return "it would not exit and was killed"
    if code >= 0:
        return f"exit code {code}"
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _describe(command: Command) -> str:
    """A command that the worker answers, as a crash message names it ('' for Stop and Shutdown)."""
    if isinstance(command, Load):
        return f"loading {Path(command.settings.path).name}"
    if isinstance(command, Generate):
        return "generating a reply"
    if isinstance(command, Unload):
        return "unloading the model"
    return ""


def _hint(code: int | None, doing: str) -> str:
    """What the user can try after a crash, when the way the worker died suggests something."""
    if code == -signal.SIGKILL:
        return " (something killed it: if the system ran out of memory, try a smaller model or context)"
    if doing.startswith("loading"):
        return " (the file may be damaged, or made for a newer llama.cpp: try another copy or model)"
    return ""


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
    After a crash the client starts a fresh, empty worker (before it reports :class:`Crashed`,
    so a command sent on hearing of the crash reaches the new one). A worker that dies
    before it has started, :data:`MAX_FAILED_STARTS` times in a row, is not restarted
    at once: the next load starts one. Sending never blocks, and every wait here has a bound.
    """

    def __init__(self, on_event: EventHandler | None = None) -> None:
        self.on_event = on_event
        self.events: queue.Queue[Event] = queue.Queue()
        self._ids = itertools.count(1)
        self._last_request = 0
        self._lock = threading.Lock()
        # What the worker was asked and has not answered yet, oldest (the one in progress) first.
        self._pending: deque[str] = deque()
        self._closed = False
        self._failed_starts = 0  # workers in a row that died before saying Ready
        self.crashes = 0
        self.model: ModelInfo | None = None
        self.last_stats: GenerationStats | None = None
        self.rpc: tuple[str, ...] = ()  # remote machines of the latest load
        self._process: WorkerProcess | None = None
        with self._lock:
            self._start()

    # ---- plumbing ---------------------------------------------------------------------

    def _start(self) -> WorkerProcess:
        """A fresh worker, made current before its threads run (the caller holds the lock)."""
        try:
            process = WorkerProcess(self._arrived, self._worker_died)
        except OSError as exc:  # no memory or processes left to start one, or Python is gone
            self._process = None
            raise EngineError(f"Hearth could not start its model engine ({exc}): close some programs "
                              "and load the model again", "load") from exc
        self._process = process
        process.start()
        return process

    def _arrived(self, source: WorkerProcess, event: Event) -> None:
        if source is not self._process or source.closing:
            return  # the late word of a worker that was replaced or is being closed
        if isinstance(event, Ready):
            self._failed_starts = 0
        self._deliver(event)

    def _deliver(self, event: Event) -> None:
        if isinstance(event, Loaded):
            self.model = event.info
        elif isinstance(event, Done):
            self.last_stats = event.stats
        if isinstance(event, Loaded | Done | Error | Unloaded):  # each command's one answer, in order
            with contextlib.suppress(IndexError):
                self._pending.popleft()
        handler = self.on_event
        if handler is None:
            self.events.put(event)
            return
        try:
            handler(event)
        except Exception:  # a front end's bug must not end the engine's events
            traceback.print_exc(file=sys.stderr)

    def _worker_died(self, dead: WorkerProcess, code: int | None, broken: str = "") -> None:
        if self._process is not dead:
            return
        remote = _remote_crash(self.rpc, self._doing(dead), self.model, dead.stderr_tail)
        with self._lock:
            if self._process is not dead or self._closed:
                return
            self.crashes += 1
            was_doing, model = self._doing(dead), self.model
            detail = broken or dead.crash_detail()
            self.model = None
            self.rpc = ()  # a fresh worker has no remote machines registered
            self._pending.clear()  # lost with the worker
            self._failed_starts = 0 if dead.ready else self._failed_starts + 1
            gave_up = self._failed_starts >= MAX_FAILED_STARTS
            not_restarted = ""
            if gave_up:
                self._process = None  # no restart loop: the next load starts one
            else:
                try:
                    self._start()
                except EngineError as exc:  # said in the Crashed below; the next load tries again
                    not_restarted = str(exc)
        if not_restarted:
            self._deliver(Crashed(f"The model engine stopped unexpectedly ({_signal_name(code)}). "
                                  f"{not_restarted}.", code))
            return
        if remote and not gave_up:
            self._deliver(Crashed(remote, code))
            return
        message = f"The model engine stopped unexpectedly ({_signal_name(code)})"
        if was_doing:
            message += f" while {was_doing}"
        if detail:
            message += f": {detail}"
        if gave_up:
            message += (f". It failed to start {MAX_FAILED_STARTS} times in a row, so Hearth stopped "
                        "restarting it; loading a model tries again. If it keeps failing, run "
                        "`hearth --self-test` and report what it says")
        else:
            message += ". Hearth restarted it" + _hint(code, was_doing)
        if model:
            message += f"; {model.name} is no longer loaded"
        self._deliver(Crashed(message + ".", code))

    def _doing(self, process: WorkerProcess) -> str:
        """What ``process`` is busy with, for a crash message ('' when idle)."""
        if not process.ready:
            return "starting"
        return self._pending[0] if self._pending else ""

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process else None

    def send(self, command: Command) -> None:
        """Queue ``command`` for the worker; a Load or Generate starts one if none runs (never blocks)."""
        with self._lock:
            if self._closed:
                raise EngineError("the engine is closed")
            process = self._process
            if process is None:
                if not isinstance(command, Load | Generate):
                    return  # nothing runs: nothing to stop or unload
                process = self._start()
            doing = _describe(command)
            if doing:
                self._pending.append(doing)
            process.send(command)  # under the lock: answers come back in the order of _pending

    def restart(self) -> None:
        """Kill the worker as it is (stuck, or busy with what is no longer wanted) and start an empty one.

        The old one is gone first (its memory freed); raise EngineError if no new one can start.
        """
        with self._lock:
            if self._closed:
                return
            old, self._process = self._process, None
            if old is not None:
                old.closing = True
            self.model = None
            self.rpc = ()
            self._pending.clear()
        if old is not None:
            old.terminate(timeout=1.0, graceful=False)
        with self._lock:
            if not self._closed and self._process is None:
                self._start()

    # ---- commands ---------------------------------------------------------------------

    def load(self, settings: LoadSettings) -> None:
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
        self.send(Generate(request_id, prompt, tuple(stop), sampling or SamplingSettings(), chat_id))
        return request_id

    def stop(self, request_id: int | None = None) -> None:
        """Stop a reply now (the latest by default), also during prompt evaluation."""
        self.send(Stop(request_id if request_id is not None else self._last_request))

    def unload(self) -> None:
        self.model = None
        self.send(Unload())

    def close(self) -> None:
        """End the worker (within :data:`~app.engine.worker_process.EXIT_WAIT_S` or so); nothing more is reported."""
        with self._lock:
            self._closed = True
            process, self._process = self._process, None
        if process is not None:
            process.terminate()

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    # ---- blocking helpers (no on_event) ---------------------------------------------------

    def next_event(self, timeout: float | None = None) -> Event:
        """The next event, waiting at most ``timeout`` s (None: :data:`ANSWER_TIMEOUT_S`)."""
        wait = ANSWER_TIMEOUT_S if timeout is None else timeout
        try:
            return self.events.get(timeout=wait)
        except queue.Empty:
            raise EngineError(
                f"the model engine did not answer within {wait:.0f} s: it is stuck, or the machine is "
                "very busy. Stop the reply and try again; if it happens again, reload the model "
                "(Hearth starts a fresh engine for it)") from None

    def _until(self, kinds: tuple[type, ...], timeout: float | None) -> Event:
        deadline = time.monotonic() + (ANSWER_TIMEOUT_S if timeout is None else timeout)
        while True:
            event = self.next_event(max(0.0, deadline - time.monotonic()))
            if isinstance(event, kinds):
                return event

    def _discard_stale(self) -> Crashed | None:
        """Drop events of earlier commands (a load that timed out, a stopped reply); the last crash among them."""
        crashed = None
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return crashed
            if isinstance(event, Crashed):
                crashed = event

    def load_model(self, settings: LoadSettings, timeout: float = 300.0) -> ModelInfo:
        """Load and wait; raise EngineError (``kind`` load/memory) or on a crash.

        A load that does not end within ``timeout`` s is abandoned: the worker is restarted empty.
        """
        self._discard_stale()  # an earlier load's late answer is not this one's
        self.load(settings)
        try:
            event = self._until((Loaded, Error, Crashed), timeout)
        except EngineError:
            self.restart()
            raise EngineError(
                f"loading {Path(settings.path).name} did not finish within {timeout:.0f} s (the machine "
                "may be very busy, or the model too large for it). Hearth restarted the engine: try "
                "again, or choose a smaller model or context", "load") from None
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
        timeout: float = ANSWER_TIMEOUT_S,
    ) -> Iterator[str]:
        """Yield reply text as it streams; afterwards ``last_stats`` holds the figures.

        Closing the generator early (``break``) stops the reply in the worker. ``timeout``
        bounds each wait for the next piece.
        """
        crashed = self._discard_stale()
        if crashed is not None:  # unheard until now: the model this reply needs is gone
            raise EngineError(crashed.message, "generate")
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
        """After an early stop, consume events up to this request's end (at most ``timeout`` s)."""
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
