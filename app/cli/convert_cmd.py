"""``hearth convert``: turn a GPTQ branch (a folder, or fetched from the Hub first) into a GGUF llama.cpp loads."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from app.cli.download_cmd import ProgressBar, with_progress
from app.cli.terminal import safe_line
from app.convert import OUTPUT_TYPES, ConvertProgress
from app.convert.sources import ConvertSource, convert_source, download_source, resolve_source
from app.hub.transfer import Control
from app.paths import app_dirs


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a GPTQ branch (a folder, a Hub branch or a catalogue variant) to GGUF",
        description="Dequantise a GPTQ branch and write a GGUF for llama.cpp: Q8_0 directly, or F16 "
        "requantised by llama.cpp to the K-quant nearest the GPTQ bits (Q4_K_M for 4-bit, Q3_K_M for "
        "3-bit, Q8_0 for 8-bit) unless --type says otherwise. A Hub branch is downloaded first (verified, "
        "resumable: run the same command again after an interruption). The GGUF goes beside the branch "
        "folder as <branch>.<TYPE>.gguf, with a <branch>.<TYPE>.gguf.json record of its source.",
    )
    parser.add_argument("target", metavar="PATH|REPO:BRANCH",
                        help="the folder of a downloaded GPTQ branch, OWNER/NAME:BRANCH on the Hub, or a "
                        "catalogue GPTQ variant such as mistral-7b-openorca:gptq:main")
    parser.add_argument("--out", metavar="FILE", type=Path,
                        help="the GGUF to write (default: <branch>.<TYPE>.gguf beside the branch folder)")
    parser.add_argument("--type", choices=OUTPUT_TYPES, dest="out_type", help="output type (default: by GPTQ bits)")
    parser.add_argument("--template", metavar="ID",
                        help="embed this catalogue prompt template (chatml, llama-2-chat, ...) as the chat "
                        "template (default: the catalogue model's for a catalogue branch, else the branch's "
                        "tokenizer_config.json template, if any)")
    parser.set_defaults(func=run)


class ProgressLine:
    """One rewritten progress line on a terminal (percent, MB/s), at most a few updates a second."""

    def __init__(self, stream: TextIO, interval_s: float = 0.2) -> None:
        self.stream = stream
        self.interval_s = interval_s
        self.started = time.monotonic()
        self.shown = 0.0
        self.tty = stream.isatty()

    def __call__(self, update: ConvertProgress) -> None:
        now = time.monotonic()
        final = update.done >= update.total
        if not final and now - self.shown < self.interval_s:
            return
        self.shown = now
        if update.stage == "requantize":
            text = "requantising with llama.cpp..." if not final else "requantised"
        else:
            rate = update.done / 1e6 / max(now - self.started, 1e-6)
            percent = 100 * update.done / max(update.total, 1)
            text = f"converting: {percent:5.1f}% of {update.total / 1e6:,.0f} MB read, {rate:,.1f} MB/s"
        if self.tty:
            self.stream.write(f"\r\033[K{text}")
        elif final:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _download(source: ConvertSource) -> int | None:
    """Fetch the branch with the download progress bar; an exit status when it stopped early."""
    assert source.request is not None
    label = source.title or source.request.label
    print(safe_line(f"Fetching {label} ({source.request.repo}:{source.request.revision})…"), file=sys.stderr)

    def work(control: Control, bar: ProgressBar) -> bool:
        def on_total(total: int) -> None:
            bar.total = total

        download_source(source, app_dirs().models, control, bar.add, bar.set_phase, on_total)
        return True

    return None if with_progress(0, work) else 130


def run(args: argparse.Namespace) -> int:
    source = resolve_source(args.target, app_dirs().models)
    if source.request is not None:
        stopped = _download(source)
        if stopped is not None:
            return stopped
    line = ProgressLine(sys.stderr)
    try:
        conversion = convert_source(source, args.out, args.out_type, args.template, progress=line)
    finally:
        line.close()
    print(safe_line(conversion.path, limit=None))
    return 0
