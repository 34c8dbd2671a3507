"""Requantise an F16 GGUF with llama.cpp's own quantizer, in a child process that a cancel can stop."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from app.convert.errors import ConversionCancelled, ConvertError

# llama.cpp's llama_ftype numbers (llama.h), so this module need not import llama_cpp in the parent.
FTYPES = {"f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q2_k": 10, "q3_k_s": 11,
          "q3_k_m": 12, "q3_k_l": 13, "q4_k_s": 14, "q4_k_m": 15, "q5_k_s": 16, "q5_k_m": 17, "q6_k": 18,
          "iq4_nl": 25, "iq4_xs": 30}


def _quantize_child(source: str, target: str, ftype: int, threads: int, log_path: str) -> None:
    """Child process body: llama.cpp's log goes to ``log_path``; the exit status tells the outcome."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    status = llama_cpp.llama_model_quantize(source.encode(), target.encode(), ctypes.byref(params))
    os._exit(0 if status == 0 else 3)


def _last_error_line(log_path: Path) -> str:
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    errors = [line for line in lines if "error" in line.lower() or "failed" in line.lower()]
    return (errors or lines or ["no log"])[-1][:300]


def run_in_child(target: Callable[..., None], args: tuple[object, ...], cancel: Callable[[], bool], what: str,
                 poll_s: float = 0.1) -> None:
    """Run ``target(*args, log_path)`` in a spawned child process; stop it and raise on cancel.

    A native crash cannot take the caller down, and a cancel kills the child mid-work. The child
    reports failure by exiting non-zero (3: see its llama.cpp log, whose last error line is quoted).
    """
    with tempfile.TemporaryDirectory(prefix="hearth-child-") as scratch:
        log_path = Path(scratch) / "llama.log"
        context = multiprocessing.get_context("spawn")
        child = context.Process(target=target, daemon=True, args=(*args, str(log_path)))
        child.start()
        try:
            while child.is_alive():
                if cancel():
                    raise ConversionCancelled()
                child.join(poll_s)
        finally:
            if child.is_alive():
                child.kill()
                child.join()
        if child.exitcode != 0:
            cause = f"exit status {child.exitcode}" if child.exitcode != 3 else _last_error_line(log_path)
            raise ConvertError(f"llama.cpp could not {what}: {cause}")


def requantize(source: Path, target: Path, out_type: str, cancel: Callable[[], bool],
               threads: int | None = None, poll_s: float = 0.1) -> None:
    """Write ``target`` as ``out_type`` from the F16 GGUF ``source``; stop and raise on cancel.

    The quantizer runs in a spawned child process (:func:`run_in_child`). ``target`` is left to the
    caller to remove on failure.
    """
    if out_type not in FTYPES:
        raise ConvertError(f"llama.cpp has no output type {out_type!r}; choose one of {', '.join(FTYPES)}")
    threads = threads or max(1, (os.cpu_count() or 1))
    run_in_child(_quantize_child, (str(source), str(target), FTYPES[out_type], threads), cancel,
                 f"requantise to {out_type.upper()}", poll_s)


def wait_for_removal(path: Path, attempts: int = 20) -> None:
    """Remove ``path``, retrying briefly (a just-killed child may still hold it open on Windows)."""
    for _ in range(attempts):
        try:
            path.unlink(missing_ok=True)
            return
        except PermissionError:
            time.sleep(0.05)
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
