"""``hearth convert``: turn a GPTQ branch (a folder, or fetched from the Hub first) into a GGUF llama.cpp loads."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from app.cli.download_cmd import ProgressBar, with_progress
from app.cli.terminal import safe_line
from app.convert import OUTPUT_TYPES, ConvertProgress, plan_branch
from app.convert.quality import DEFAULT_QUALITY_TOKENS
from app.convert.sources import ConvertSource, convert_source, download_source, resolve_source
from app.convert.summary import plan_lines, result_lines
from app.errors import HearthError
from app.hub.transfer import Control
from app.paths import app_dirs


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a GPTQ branch (a folder, a Hub branch or a catalogue variant) to GGUF",
        description="Write a GGUF for llama.cpp from a GPTQ branch. Where llama.cpp's blocks can hold the GPTQ "
        "weights (groups of whole 32-column blocks: no act order, or act order whose g_idx is in order), they "
        "are written as they are: exact GPTQ weights in Q4_0/Q4_1 (2-4 bit) or Q8_0 (symmetric 8-bit) blocks, "
        "no second quantisation. Otherwise (act order that permutes the groups) the exact model is "
        "dequantised to F16 and llama.cpp requantises it to each type of the branch's size class, keeping "
        "the one measured closest. Every conversion is then measured against the exact F16 model with "
        "llama.cpp on the CPU (KL divergence, top-1 agreement). --type forces any llama.cpp type. A Hub "
        "branch is downloaded first (verified, resumable: run the same command again after an "
        "interruption). The GGUF goes beside the branch folder as <branch>.<TYPE>.gguf, with a "
        "<branch>.<TYPE>.gguf.json record of its source, mode and quality.",
    )
    parser.add_argument("target", metavar="PATH|REPO:BRANCH",
                        help="the folder of a downloaded GPTQ branch, OWNER/NAME:BRANCH on the Hub, or a "
                        "catalogue GPTQ variant such as mistral-7b-openorca:gptq:main")
    parser.add_argument("--out", metavar="FILE", type=Path,
                        help="the GGUF to write (default: <branch>.<TYPE>.gguf beside the branch folder)")
    parser.add_argument("--type", choices=OUTPUT_TYPES, dest="out_type", metavar="TYPE",
                        help="force an output type: " + ", ".join(OUTPUT_TYPES) + " (default: exact GPTQ weights "
                        "where possible, else the best measured type of the branch's size class)")
    parser.add_argument("--quality-tokens", type=int, default=DEFAULT_QUALITY_TOKENS, metavar="N",
                        help=f"tokens of the fixed text the quality step evaluates (default {DEFAULT_QUALITY_TOKENS}; "
                        "0 skips the step and the F16 reference it needs)")
    parser.add_argument("--plan", action="store_true",
                        help="only say what the conversion would do and how large the file would be")
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
        self.stage = ""

    def __call__(self, update: ConvertProgress) -> None:
        now = time.monotonic()
        if update.stage != self.stage:  # each pass has its own rate
            self.stage, self.started = update.stage, now
        final = update.done >= update.total
        if not final and now - self.shown < self.interval_s:
            return
        self.shown = now
        if update.stage == "requantize":
            kind = update.tensor.upper() or "the chosen type"
            text = f"llama.cpp is requantising to {kind}..." if not final else "requantised"
        elif update.stage == "quality":
            text = f"measuring {update.tensor.upper()} against the F16 model..." if not final else \
                f"measured {update.tensor.upper()}"
        else:
            rate = update.done / 1e6 / max(now - self.started, 1e-6)
            percent = 100 * update.done / max(update.total, 1)
            what = "writing the F16 reference" if update.stage == "reference" else "converting"
            text = f"{what}: {percent:5.1f}% of {update.total / 1e6:,.0f} MB read, {rate:,.1f} MB/s"
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
    if args.quality_tokens < 0:
        raise HearthError(f"--quality-tokens must be 0 or more, not {args.quality_tokens}")
    source = resolve_source(args.target, app_dirs().models)
    if source.request is not None:
        stopped = _download(source)
        if stopped is not None:
            return stopped
    plan = plan_branch(source.folder, args.out_type)
    for text in plan_lines(plan):
        print(safe_line(text, limit=None), file=sys.stderr)
    if args.plan:
        return 0
    line = ProgressLine(sys.stderr)
    try:
        conversion = convert_source(source, args.out, args.out_type, args.template, progress=line,
                                    quality_tokens=args.quality_tokens)
    finally:
        line.close()
    for text in result_lines(conversion, f"hearth convert {args.target}"):
        print(safe_line(text, limit=None), file=sys.stderr)
    print(safe_line(conversion.path, limit=None))
    return 0
