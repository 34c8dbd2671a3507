"""The one check on a saved ``NAME.partial.json``: a resume point Hearth can trust, or the reason it cannot.

The file holds ``{"checksum", "size", "offset", "hash_state"}``. Anything else (not JSON, not an
object, wrong types, an offset that is not a whole number within the file, a hash state that is not
hex) makes it *corrupt*: the caller throws the partial file away and downloads that file again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from app.hub.entries import shown

_HEX = re.compile(r"^(?:[0-9a-f]{2})*$")
MAX_HASH_STATE_HEX = 1024


@dataclass(frozen=True)
class SavedState:
    checksum: str | None
    size: int | None
    offset: int
    hash_state: bytes | None


class Corrupt(ValueError):
    """The saved state cannot be used; the message says why (short, printable)."""


def _whole(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Corrupt(f"its {what} is {shown(value, 20)}, not a whole number of bytes")
    return value


def parse(raw: bytes) -> SavedState:
    """The state in ``raw`` or :class:`Corrupt`."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Corrupt("it is not valid JSON") from None
    if not isinstance(data, dict):
        raise Corrupt(f"it holds {type(data).__name__}, not a resume record")
    checksum = data.get("checksum")
    if checksum is not None and not isinstance(checksum, str):
        raise Corrupt(f"its checksum is {shown(checksum, 20)}")
    size = data.get("size")
    size = None if size is None else _whole(size, "size")
    offset = _whole(data.get("offset", 0), "offset")
    hash_state = data.get("hash_state")
    state: bytes | None = None
    if hash_state is not None:
        if not isinstance(hash_state, str) or len(hash_state) > MAX_HASH_STATE_HEX or not _HEX.match(hash_state):
            raise Corrupt(f"its hash state is {shown(hash_state, 20)}, not hex")
        state = bytes.fromhex(hash_state)
    return SavedState(checksum, size, offset, state)


def check(state: SavedState, *, checksum: str, size: int, on_disk: int) -> SavedState | None:
    """``state`` if it belongs to this file and its partial; None when it is another file's (start over).

    Raises :class:`Corrupt` for an offset past the end of the file.
    """
    if (state.checksum is not None and state.checksum != checksum) or (state.size is not None and state.size != size):
        return None
    if state.offset > size:
        raise Corrupt(f"its offset {state.offset:,} is past the end of the {size:,}-byte file")
    if state.offset > on_disk:  # bytes lost after the save (power cut): hash the partial file again
        return SavedState(state.checksum, state.size, 0, None)
    return state
