"""The error a GPTQ-to-GGUF conversion raises for input the user can fix."""

from __future__ import annotations

from app.errors import HearthError


class ConvertError(HearthError):
    """A conversion failed: the message names the file or setting at fault and what to do."""


class ConversionCancelled(ConvertError):
    """The caller asked to stop; every partial file has been removed."""

    def __init__(self) -> None:
        super().__init__("conversion cancelled; no output file was left behind")
