"""``hearth convert``: turn a downloaded GPTQ branch folder into a GGUF file llama.cpp can load."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from app.convert import OUTPUT_TYPES, ConvertProgress, convert_branch


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a GPTQ branch folder to GGUF",
        description="Dequantise the GPTQ branch in PATH and write a GGUF for llama.cpp: Q8_0 directly, or "
        "F16 requantised by llama.cpp to the K-quant nearest the GPTQ bits (Q4_K_M for 4-bit, Q3_K_M for "
        "3-bit, Q8_0 for 8-bit) unless --type says otherwise.",
    )
    parser.add_argument("path", metavar="PATH", type=Path, help="the folder of a downloaded GPTQ branch")
    parser.add_argument("--out", metavar="FILE", type=Path,
                        help="the GGUF to write (default: <branch>.<TYPE>.gguf beside PATH)")
    parser.add_argument("--type", choices=OUTPUT_TYPES, dest="out_type", help="output type (default: by GPTQ bits)")
    parser.add_argument("--template", metavar="ID",
                        help="embed this catalogue prompt template (chatml, llama-2-chat, ...) as the chat "
                        "template (default: the branch's tokenizer_config.json template, if any)")
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


def run(args: argparse.Namespace) -> int:
    line = ProgressLine(sys.stderr)
    try:
        out = convert_branch(args.path, args.out, args.out_type, args.template, progress=line)
    finally:
        line.close()
    print(out)
    return 0
