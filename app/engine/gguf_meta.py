"""Moved to :mod:`app.formats.gguf_meta` (the catalogue reads headers without the engine); kept for old imports."""

from __future__ import annotations

from app.formats.gguf_meta import *  # noqa: F403
from app.formats.gguf_meta import GGUFError, GGUFMetadata, GGUFTruncatedError, read_gguf_metadata  # noqa: F401
