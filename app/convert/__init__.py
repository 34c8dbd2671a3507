"""GPTQ-to-GGUF conversion: turn a downloaded GPTQ branch into a GGUF file llama.cpp can load."""

from __future__ import annotations

from app.convert.converter import (
    OUTPUT_TYPES,
    ConvertProgress,
    ConvertResult,
    convert_branch,
    default_output,
    plan_branch,
    run_conversion,
)
from app.convert.errors import ConversionCancelled, ConvertError

__all__ = ["OUTPUT_TYPES", "ConversionCancelled", "ConvertError", "ConvertProgress", "ConvertResult",
           "convert_branch", "default_output", "plan_branch", "run_conversion"]
