"""The llama.cpp worker process: reads commands on stdin, streams events on stdout, dies alone."""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import traceback
from typing import IO, cast

from app.engine.llama_runner import LlamaRunner, LogTail
from app.engine.protocol import (
    Command,
    Done,
    EngineError,
    Error,
    ErrorKind,
    Generate,
    Load,
    Loaded,
    ProtocolError,
    Ready,
    Shutdown,
    Stop,
    Tokens,
    Unload,
    Unloaded,
    read_frame,
    write_frame,
)
from app.formats.gguf_meta import GGUFError

_EVERYTHING = 1 << 62
_ROLE_VARIABLE = "HEARTH_WORKER_ROLE"  # set by app.templates.sandbox for its child
# Tokens are sent in batches at most this often (the GUI repaints every 16 ms anyway).
STREAM_INTERVAL_S = 0.015
# With the app gone (its end of the command pipe closed), how long a load or reply in progress may
# take to finish before the worker leaves anyway: nobody is left to kill it.
ORPHAN_EXIT_S = 10.0


class Worker:
    """Runs commands one at a time; a reader thread handles Stop at once, even mid-decode."""

    def __init__(self, commands_in: IO[bytes], events_out: IO[bytes]) -> None:
        self.commands_in = commands_in
        self.events_out = events_out
        self.queue: queue.Queue[Command] = queue.Queue()
        self.stop_upto = 0
        self.runner: LlamaRunner | None = None

    def _read_commands(self) -> None:
        while True:
            try:
                command = read_frame(self.commands_in)
            except (ProtocolError, OSError, EOFError):
                command = None
            if command is None:  # the app is gone: stop whatever runs and leave
                self.stop_upto = _EVERYTHING
                self.queue.put(Shutdown())
                watchdog = threading.Timer(ORPHAN_EXIT_S, os._exit, (0,))
                watchdog.daemon = True  # a load cannot be interrupted: do not outlive the app by long
                watchdog.start()
                return
            if isinstance(command, Stop):
                self.stop_upto = max(self.stop_upto, command.request_id)
                continue
            if isinstance(command, Shutdown):
                self.stop_upto = _EVERYTHING
            if isinstance(command, Load | Generate | Unload | Shutdown):
                self.queue.put(command)

    def run(self) -> int:
        log = LogTail.install()
        threading.Thread(target=self._read_commands, name="commands", daemon=True).start()
        write_frame(self.events_out, Ready(os.getpid()))
        while True:
            command = self.queue.get()
            if isinstance(command, Shutdown):
                self._unload()
                return 0
            try:
                if isinstance(command, Load):
                    self._load(command, log)
                elif isinstance(command, Generate):
                    self._generate(command)
                elif isinstance(command, Unload):
                    self._unload()
                    write_frame(self.events_out, Unloaded())
            except (EngineError, GGUFError) as exc:
                kind = exc.kind if isinstance(exc, EngineError) else "load"
                request_id = command.request_id if isinstance(command, Generate) else None
                write_frame(self.events_out, Error(str(exc), cast(ErrorKind, kind), request_id))
            except Exception as exc:  # a bug: report it, keep serving
                traceback.print_exc(file=sys.stderr)
                request_id = command.request_id if isinstance(command, Generate) else None
                kind = cast(ErrorKind, "load" if isinstance(command, Load) else "generate")
                write_frame(self.events_out, Error(f"{type(exc).__name__}: {exc}", kind, request_id))

    def _load(self, command: Load, log: LogTail) -> None:
        self._unload()
        runner = LlamaRunner(command.settings, log)
        try:
            info = runner.load()
        except BaseException:
            runner.close()
            raise
        self.runner = runner
        write_frame(self.events_out, Loaded(info))

    def _unload(self) -> None:
        if self.runner is not None:
            self.runner.close()
        self.runner = None

    def _generate(self, command: Generate) -> None:
        runner = self.runner
        if runner is None:
            raise EngineError("no model is loaded", "generate")
        request_id = command.request_id
        runner.stop_requested = lambda: self.stop_upto >= request_id
        out = self.events_out
        pending: list[str] = []
        counts = [0]
        last_sent = [0.0]

        def send() -> None:
            write_frame(out, Tokens(request_id, "".join(pending), counts[0]))
            pending.clear()
            counts[0] = 0
            last_sent[0] = time.perf_counter()

        def emit(text: str, count: int) -> None:
            # The first piece goes at once (time to first token); later ones at most every
            # STREAM_INTERVAL_S, fewer wake-ups for the app on a machine with few cores.
            pending.append(text)
            counts[0] += count
            if time.perf_counter() - last_sent[0] >= STREAM_INTERVAL_S:
                send()

        try:
            stats = runner.generate(command.prompt, command.stop, command.sampling, emit, command.chat_id)
        finally:
            runner.stop_requested = lambda: False
        if pending:
            send()
        write_frame(out, Done(request_id, stats))


def main() -> int:
    if os.environ.get(_ROLE_VARIABLE) == "templates":  # the bundled app's template sandbox (internal)
        from app.templates.sandbox import main as sandbox_main

        return sandbox_main()
    # Frames go out on a private copy of stdout; fd 1 then points at stderr, so a stray
    # printf from native code cannot corrupt the protocol.
    events_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    with os.fdopen(events_fd, "wb") as events_out:
        return Worker(sys.stdin.buffer, events_out).run()


if __name__ == "__main__":
    sys.exit(main())
