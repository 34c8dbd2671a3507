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
FTYPES = {"q4_k_m": 15, "q3_k_m": 12, "q8_0": 7}


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


def requantize(source: Path, target: Path, out_type: str, cancel: Callable[[], bool],
               threads: int | None = None, poll_s: float = 0.1) -> None:
    """Write ``target`` as ``out_type`` from the F16 GGUF ``source``; stop and raise on cancel.

    The quantizer runs in a spawned child process: a native crash cannot take the caller down, and a
    cancel kills it mid-tensor. ``target`` is left to the caller to remove on failure.
    """
    ftype = FTYPES[out_type]
    threads = threads or max(1, (os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="hearth-quantize-") as scratch:
        log_path = Path(scratch) / "llama.log"
        context = multiprocessing.get_context("spawn")
        child = context.Process(target=_quantize_child, daemon=True,
                                args=(str(source), str(target), ftype, threads, str(log_path)))
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
            raise ConvertError(f"llama.cpp could not requantise to {out_type.upper()}: {cause}")


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
