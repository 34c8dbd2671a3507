"""Text from outside (Hub names, imports, templates, models, servers) made safe to print in a terminal."""

from __future__ import annotations

import re
from typing import TextIO

# Characters a terminal may act on instead of showing: C0 and C1 controls (ESC starts CSI and
# OSC sequences; 0x9B is an 8-bit CSI), DEL, bidirectional overrides and isolates that reorder
# what is shown, the Unicode line and paragraph separators, and lone surrogates (not encodable).
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}\u2028\u2029\ud800-\udfff]")
# In block text the CLI keeps line breaks and tabs (a reply, an exported transcript).
_UNSAFE_IN_BLOCK = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}\u2028\u2029\ud800-\udfff]")
# json.dumps already escapes C0 controls inside strings; the newlines left are its own layout.
_UNSAFE_IN_JSON = re.compile(f"[\x7f-\x9f{_BIDI}\u2028\u2029\ud800-\udfff]")

LINE_LIMIT = 4000  # longest single line printed for one value (an error, a name)


def visible_escape(char: str) -> str:
    """``\\x1b``, ``\\u202e``: the character's code written out, as Python would."""
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def _escape(match: re.Match[str]) -> str:
    return visible_escape(match.group())


def _shorten(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def safe_line(text: object, limit: int | None = LINE_LIMIT) -> str:
    """One line: every control character, newline included, shown escaped; long text cut."""
    return _UNSAFE.sub(_escape, _shorten(str(text), limit))


def safe_text(text: object, *, join_crlf: bool = True) -> str:
    """Several lines: newlines and tabs kept, everything else escaped.

    ``\\r\\n`` reads as one line break unless ``join_crlf`` is False (then the ``\\r`` is shown,
    for output that must be exact, such as a prompt).
    """
    text = str(text)
    return _UNSAFE_IN_BLOCK.sub(_escape, text.replace("\r\n", "\n") if join_crlf else text)


def safe_json(text: str) -> str:
    """JSON text from ``json.dumps``: unsafe characters as ``\\uXXXX`` (the same JSON value)."""
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class SafeStream:
    """Writes streamed text (a model's reply) to a terminal with no control sequences.

    Newlines, tabs and all printable Unicode pass; a ``\\r`` that ends a piece waits for the
    next one, so a ``\\r\\n`` split across pieces still reads as one line break.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._carriage_return = False

    def write(self, piece: str) -> None:
        if self._carriage_return:
            self._carriage_return = False
            if not piece.startswith("\n"):
                piece = "\r" + piece
        if piece.endswith("\r"):
            self._carriage_return = True
            piece = piece[:-1]
        if piece:
            self.stream.write(safe_text(piece))

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        """End of the stream: a lone ``\\r`` still held is shown escaped."""
        if self._carriage_return:
            self._carriage_return = False
            self.stream.write(visible_escape("\r"))
        self.stream.flush()
