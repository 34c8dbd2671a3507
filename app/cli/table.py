"""Plain-text tables and human-readable sizes for terminal output."""

from __future__ import annotations

from collections.abc import Sequence

from app.cli.terminal import safe_line

TABLE_CELL_LIMIT = 200  # a cell longer than this is cut (a hostile name must not flood the table)
_UNITS = ("B", "kB", "MB", "GB", "TB")


def human_size(size: int | None) -> str:
    """Decimal units, as model cards and the Hub print them: ``7.26 GB``."""
    if size is None:
        return "?"
    value = float(size)
    for unit in _UNITS:
        if value < 1000 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int] | None = None) -> str:
    """Columns padded to their widest cell; ``right`` holds indexes of right-aligned columns.

    Every cell is made safe for a terminal (control characters shown escaped, long text cut).
    """
    right = right or set()
    headers = [safe_line(h, limit=TABLE_CELL_LIMIT) for h in headers]
    rows = [[safe_line(c, limit=TABLE_CELL_LIMIT) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])
