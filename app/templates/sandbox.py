"""Templates from model files render in a child process that can be stopped: a hard bound on time and memory.

Inside the child the same bounded sandbox and watchdog run (:mod:`app.templates.environment`);
the process adds what no in-process check can: an address-space limit set by the OS
(``RLIMIT_AS`` where there is one), and a parent that kills it when a render runs past
its deadline, whatever the template was doing. The next render starts a fresh child.
Requests and replies are one JSON line each.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any, cast

from app.templates.environment import TIME_LIMIT_S

HARD_TIMEOUT_S = TIME_LIMIT_S + 2.0  # the in-child limit, plus time for the child to report it
# A fresh child's start (Python, Jinja, the environments) is not a render's time: on a busy machine
# it can take seconds, so it has its own, longer bound before the first request is sent.
START_TIMEOUT_S = 60.0
_READY = b'{"ready": true}\n'
CHILD_ADDRESS_SPACE = 1024 * 1024 * 1024  # virtual memory the child may add to what it maps at start (POSIX)
_ROLE = "HEARTH_WORKER_ROLE"


class IsolatedFailure(Exception):
    """The child rendered nothing; ``kind``/``words``/``reason`` as :func:`describe_failure` gives them."""

    def __init__(self, kind: str, words: str, reason: str = "") -> None:
        super().__init__(words)
        self.kind, self.words, self.reason = kind, words, reason


def isolation_enabled() -> bool:
    return os.environ.get("HEARTH_TEMPLATE_ISOLATION", "1") != "0"


def sandbox_command() -> list[str]:
    """How to start the child: this Python on this module (the bundled app: its worker entry)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--engine-worker"]
    return [sys.executable, "-m", "app.templates.sandbox"]


class TemplateSandbox:
    """One child process, started on first use, serving one render at a time."""

    def __init__(self, hard_timeout_s: float = HARD_TIMEOUT_S, start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.hard_timeout_s = hard_timeout_s
        self.start_timeout_s = start_timeout_s
        self._lock = threading.Lock()
        self._popen: subprocess.Popen[bytes] | None = None
        self._replies: queue.Queue[bytes | None] = queue.Queue()
        self.restarts = 0

    def _start(self) -> subprocess.Popen[bytes]:
        if self._popen is not None and self._popen.poll() is None:
            return self._popen
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        env[_ROLE] = "templates"
        self._popen = subprocess.Popen(sandbox_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.DEVNULL, env=env)
        replies: queue.Queue[bytes | None] = queue.Queue()
        self._replies = replies
        stdout = cast(IO[bytes], self._popen.stdout)

        def read() -> None:
            for line in iter(stdout.readline, b""):
                replies.put(line)
            replies.put(None)

        threading.Thread(target=read, name="template-sandbox", daemon=True).start()
        try:
            ready = replies.get(timeout=self.start_timeout_s)
        except queue.Empty:
            ready = None
        if ready != _READY:
            self.stop()
            raise IsolatedFailure("error", "failed to render: its process did not start (the machine may be "
                                  "out of memory or very busy); try again")
        return self._popen

    @property
    def pid(self) -> int | None:
        """The running child's process id, if one runs."""
        return self._popen.pid if self._popen is not None and self._popen.poll() is None else None

    def stop(self) -> None:
        popen, self._popen = self._popen, None
        if popen is not None and popen.poll() is None:
            popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=5)

    def render(self, source: str, dialect: str, context: dict[str, Any]) -> str:
        """The rendered prompt; IsolatedFailure when the template failed, ran too long or died."""
        request = json.dumps({"source": source, "dialect": dialect, "context": context}).encode() + b"\n"
        with self._lock:
            popen = self._start()  # IsolatedFailure when a fresh child does not start
            try:
                stdin = cast(IO[bytes], popen.stdin)
                stdin.write(request)
                stdin.flush()
            except (BrokenPipeError, OSError):
                self.stop()
                raise IsolatedFailure("error", "failed to render: its process could not be started") from None
            try:
                line = self._replies.get(timeout=self.hard_timeout_s)
            except queue.Empty:
                self.stop()
                self.restarts += 1
                raise IsolatedFailure(
                    "error", f"was stopped: it ran longer than {self.hard_timeout_s:g} s") from None
            if line is None:
                self.stop()
                self.restarts += 1
                raise IsolatedFailure("error", "was stopped: its process ran out of memory or crashed")
        reply = json.loads(line)
        if "prompt" in reply:
            return str(reply["prompt"])
        raise IsolatedFailure(str(reply["kind"]), str(reply["words"]), str(reply.get("reason", "")))


_SANDBOX = TemplateSandbox()
atexit.register(_SANDBOX.stop)


def shared_sandbox() -> TemplateSandbox:
    """The process-wide sandbox that :func:`render_isolated` uses."""
    return _SANDBOX


def render_isolated(source: str, dialect: str, context: dict[str, Any]) -> str:
    """Render in the shared child process (started on first use)."""
    return _SANDBOX.render(source, dialect, context)


def serve(commands: IO[bytes], replies: IO[bytes]) -> int:
    """The child's loop: one JSON request per line in, one JSON reply per line out."""
    from app.templates.environment import describe_failure, hearth_environment, hf_environment, render_bounded

    environments = {"hearth": hearth_environment(), "transformers": hf_environment()}
    compiled: dict[tuple[str, str], Any] = {}
    replies.write(_READY)  # started: from here on, each request has its own bound
    replies.flush()
    for line in iter(commands.readline, b""):
        try:
            request = json.loads(line)
            key = (request["dialect"], request["source"])
            if key not in compiled:
                if len(compiled) > 32:
                    compiled.clear()
                compiled[key] = environments[key[0]].from_string(key[1])
            reply: dict[str, Any] = {"prompt": render_bounded(compiled[key], request["context"])}
        except Exception as exc:  # every failure goes back as one line
            kind, words, reason = describe_failure(exc)
            reply = {"kind": kind, "words": words, "reason": reason}
        replies.write(json.dumps(reply).encode() + b"\n")
        replies.flush()
    return 0


def main() -> int:
    if sys.platform != "win32":
        import resource

        import psutil

        # What is mapped already (libraries, in the bundled app llama.cpp too) plus the allowance.
        limit = psutil.Process().memory_info().vms + CHILD_ADDRESS_SPACE
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print cannot corrupt the replies
    sys.stdout = sys.stderr
    return serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    sys.exit(main())
