"""Plain-words lines about a conversion: what it will do and write (before), how close it came (after)."""

from __future__ import annotations

from app.catalog.installed import Conversion
from app.convert.plan import EXACT_MODE, ConversionPlan, human_size


def mode_explanation(plan: ConversionPlan) -> str:
    """One line: the mode, and what it means for the weights."""
    if plan.exact:
        blocks = "/".join(sorted({t.name for t in plan.layer_types.values()}))
        return (f"Mode: {EXACT_MODE}: GPTQ's own codes, scales and zeros written into llama.cpp {blocks} blocks "
                "(no second quantisation)")
    if plan.out_type is None:
        return (f"Mode: {plan.mode}: no llama.cpp block holds these weights exactly, so Hearth requantises "
                "the exact F16 model to each type and keeps the one measured closest to it")
    return f"Mode: {plan.mode}"


def plan_lines(plan: ConversionPlan) -> list[str]:
    """What converting will do, and the sizes, before anything is written."""
    return [mode_explanation(plan), *plan.size_lines()]


def quality_line(conversion: Conversion) -> str:
    figures = conversion.quality
    if figures is None:
        if conversion.out_type == "f16":
            return "Quality: this F16 file is the exact dequantised model itself"
        return f"Quality: not measured ({conversion.quality_note})" if conversion.quality_note else \
            "Quality: not measured"
    return (f"Quality against the exact F16 model ({figures.tokens} tokens of a fixed text, llama.cpp on CPU): "
            f"mean KL divergence {figures.kl_mean:.4g} nats (largest {figures.kl_max:.3g}), "
            f"top-1 token agreement {100 * figures.top1:.1f}%")


def result_lines(conversion: Conversion, command: str = "hearth convert SOURCE") -> list[str]:
    """The summary after converting: file, mode, quality, why this type, and the other types measured."""
    lines = [f"Converted: {conversion.path.name} ({conversion.type_label}, {human_size(conversion.size)})"]
    if conversion.mode:
        lines.append(f"Mode: {conversion.mode}")
    lines.append(quality_line(conversion))
    if conversion.choice:
        lines.append(f"Chosen: {conversion.choice}")
    for alternative in conversion.alternatives:
        if conversion.choice:
            continue  # the candidates are already listed in the choice
        delta = conversion.size - alternative.size
        figures = alternative.quality.summary if alternative.quality else "not measured"
        lines.append(f"Smaller choice: {alternative.out_type.upper()} is {human_size(alternative.size)} "
                     f"({human_size(abs(delta))} {'less' if delta > 0 else 'more'}), requantised, {figures} against "
                     f"the F16 model: {command} --type {alternative.out_type}")
    return lines
