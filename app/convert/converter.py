"""Convert a GPTQ branch folder into a GGUF llama.cpp loads, and measure it against the exact F16 model.

Where llama.cpp's blocks can hold the GPTQ weights, they are written as they are (exact mode, the
default); otherwise the branch is dequantised to F16 and requantised by llama.cpp, to the type asked
for or, by default, to the type of the branch's size class that measures closest to the F16 model.
Every conversion ends with a quality step (:mod:`app.convert.quality`) unless ``quality_tokens`` is 0.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import gguf

from app.catalog.installed import Alternative, QualityFigures, converted_output
from app.convert.checkpoint import GptqBranch
from app.convert.errors import ConversionCancelled, ConvertError
from app.convert.gptq import GptqSettings, read_json, read_settings
from app.convert.plan import (
    DEFAULT_TYPE_FOR_BITS,
    EXACT_MODE,
    OUTPUT_TYPES,
    ConversionPlan,
    human_size,
    plan_conversion,
    requantised_mode,
)
from app.convert.quality import DEFAULT_QUALITY_TOKENS, QualityMeter
from app.convert.requantize import requantize, wait_for_removal
from app.convert.writer import ConvertProgress, ProgressCallback, plain_types, write_gguf

__all__ = ["DEFAULT_QUALITY_TOKENS", "DEFAULT_TYPE_FOR_BITS", "OUTPUT_TYPES", "ConvertProgress", "ConvertResult",
           "ProgressCallback", "check_free_space", "convert_branch", "default_output", "gptq_settings",
           "plan_branch", "run_conversion"]

_MARGIN_BYTES = 64 << 20
_FILE_TYPES = {"q4_0": gguf.LlamaFileType.MOSTLY_Q4_0, "q4_1": gguf.LlamaFileType.MOSTLY_Q4_1,
               "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "f16": gguf.LlamaFileType.MOSTLY_F16}
# Two candidates whose mean KL differ by less than this share count as equal; the smaller file wins.
_KL_TIE = 0.02


@dataclass(frozen=True)
class ConvertResult:
    """What a conversion wrote: the file, its type, how the weights got there and how close they are.

    ``mode`` is "exact GPTQ weights" or "requantised to X (from ...)"; ``quality`` the figures against
    the exact F16 model (None when not measured); ``choice`` why Hearth chose ``out_type``, and
    ``alternatives`` the other types it measured (the smaller choice beside an exact 3-bit file, or
    the candidates it compared). A quality step that fails (llama.cpp crashing, memory) does not
    throw the converted file away: ``quality`` is then None and ``quality_note`` says why.
    """

    path: Path
    out_type: str
    mode: str
    quality: QualityFigures | None
    plan: ConversionPlan
    choice: str = ""
    alternatives: tuple[Alternative, ...] = ()
    quality_note: str = ""  # why there are no figures, when measuring failed


def default_output(folder: Path, out_type: str) -> Path:
    """Beside the branch folder: ``<branch>.<TYPE>.gguf`` (inside it, the file would count as branch content)."""
    return converted_output(folder, out_type)


def gptq_settings(folder: Path) -> GptqSettings:
    """The branch's GPTQ settings (bits, groups, act order), read from its config files alone."""
    config_path = Path(folder) / "config.json"
    if not config_path.is_file():
        raise ConvertError(f"{folder} has no config.json; pass the folder of a downloaded GPTQ branch")
    return read_settings(Path(folder), read_json(config_path))


def resolve_template(template: str | None) -> str | None:
    """The Jinja of catalogue prompt template ``template``; None leaves the tokenizer_config's own."""
    if template is None:
        return None
    from app.catalog import load_catalog

    templates = load_catalog().templates
    if template not in templates:
        raise ConvertError(f"no prompt template {template!r} in the catalogue; choose one of "
                           f"{', '.join(sorted(templates))}")
    return templates[template].jinja


def check_free_space(folder: Path, needed: int) -> None:
    """Raise a clear error when ``folder``'s disk has less than ``needed`` bytes free."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise ConvertError(f"not enough free disk space in {folder}: the conversion needs about "
                           f"{needed / 1e9:.1f} GB and {free / 1e9:.1f} GB is free; free some space or "
                           "choose an --out file on another disk")


def plan_branch(folder: Path, out_type: str | None = None) -> ConversionPlan:
    """What converting ``folder`` would do and write (mode, type, sizes), read from its small tensors only."""
    branch = GptqBranch(Path(folder))
    try:
        return plan_conversion(branch, out_type)
    finally:
        branch.close()


def _disk_needed(plan: ConversionPlan, measure: bool, f16_bytes: int) -> int:
    """Peak disk of the conversion: the output, the F16 model when it is needed, and a candidate in flight."""
    if plan.out_type == "f16":
        need = f16_bytes
    elif plan.exact:
        need = plan.output_bytes + ((f16_bytes + (plan.smaller[1] if plan.smaller else 0)) if measure else 0)
    elif plan.out_type == "q8_0" and not measure:
        need = plan.output_bytes
    elif plan.out_type is None:
        need = f16_bytes + 2 * plan.output_bytes  # the best candidate so far and the one being measured
    else:
        need = f16_bytes + plan.output_bytes
    return need + _MARGIN_BYTES


def _better(candidate: Alternative, best: Alternative) -> bool:
    """Lower mean KL wins; within a 2% tie, the smaller file."""
    assert candidate.quality is not None and best.quality is not None
    a, b = candidate.quality.kl_mean, best.quality.kl_mean
    if abs(a - b) <= _KL_TIE * max(a, b):
        return candidate.size < best.size
    return a < b


def _choice_text(best: Alternative, measured: list[Alternative], bits: int) -> str:
    figures = "; ".join(f"{a.out_type.upper()} {a.quality.summary if a.quality else 'not measured'}, "
                        f"{human_size(a.size)}" for a in measured)
    return (f"{best.out_type.upper()}: closest to the exact F16 model of the {bits}-bit size class types measured "
            f"(lowest mean KL divergence; within {_KL_TIE:.0%} the smaller file): {figures}")


class _Conversion:
    """One conversion's state: the branch, its plan, the files in progress (all removed on failure)."""

    def __init__(self, branch: GptqBranch, plan: ConversionPlan, out: Path | None, chat_template: str | None,
                 progress: ProgressCallback, cancel: Callable[[], bool], quality_tokens: int) -> None:
        self.branch, self.plan, self.out = branch, plan, out
        self.template, self.progress, self.cancel = chat_template, progress, cancel
        self.tokens = quality_tokens
        self.out_dir = out.parent if out is not None else branch.folder.parent
        self.temporary: list[Path] = []
        self.note = ""

    def partial(self, out_type: str) -> Path:
        target = self.out if self.out is not None else converted_output(self.branch.folder, out_type)
        path = target.with_name(target.name + ".partial")
        self.temporary.append(path)
        return path

    def reference(self, stage: str = "convert") -> Path:
        """Write the exact dequantised model as F16 (the reference every figure is measured against).

        ``stage`` "convert" when it is the conversion's main pass (requantising follows), "reference"
        when the output is already written.
        """
        path = self.out_dir / f"{self.branch.folder.name}.hearth-reference.F16.gguf.partial"
        self.temporary.append(path)
        write_gguf(self.branch, path, plain_types(self.branch, "f16"), set(), int(_FILE_TYPES["f16"]),
                   self.template, self.progress, self.cancel, stage=stage)
        return path

    def finish(self, partial: Path, out_type: str) -> Path:
        target = self.out if self.out is not None else converted_output(self.branch.folder, out_type)
        os.replace(partial, target)
        return target

    def cleanup(self) -> None:
        for path in self.temporary:
            wait_for_removal(path)

    def measure(self, meter: QualityMeter, path: Path, label: str, quantize_to: str | None = None
                ) -> QualityFigures:
        """Measure ``path`` (first requantised from the reference when ``quantize_to``: then the caller's
        "requantize" stage covers both steps, which run in one child process)."""
        if quantize_to is None:
            self.progress(ConvertProgress("quality", 0, 1, label))
        figures = meter.measure(path, self.cancel, quantize_to)
        if quantize_to is None:
            self.progress(ConvertProgress("quality", 1, 1, label))
        return figures

    def try_measure(self, meter: QualityMeter, path: Path, label: str, quantize_to: str | None = None
                    ) -> QualityFigures | None:
        """:meth:`measure`, noting a failure in ``self.note`` instead of raising (a cancel still raises)."""
        try:
            return self.measure(meter, path, label, quantize_to)
        except ConversionCancelled:
            raise
        except ConvertError as exc:
            self.note = self.note or str(exc)
            return None

    # -- the three ways -----------------------------------------------------
    def exact(self) -> ConvertResult:
        plan = self.plan
        assert plan.out_type is not None
        partial = self.partial(plan.out_type)
        types = plain_types(self.branch, "f16") | plan.layer_types
        write_gguf(self.branch, partial, types, set(plan.layer_types), int(_FILE_TYPES[plan.out_type]),
                   self.template, self.progress, self.cancel)
        quality: QualityFigures | None = None
        alternatives: tuple[Alternative, ...] = ()
        if self.tokens > 0:
            with QualityMeter(self.reference(stage="reference"), self.tokens) as meter:
                quality = self.try_measure(meter, partial, plan.out_type)
                if plan.smaller is not None and quality is not None:
                    kind = plan.smaller[0]
                    alt = self.out_dir / f"{self.branch.folder.name}.hearth-alternative.{kind.upper()}.gguf.partial"
                    self.temporary.append(alt)
                    self.progress(ConvertProgress("requantize", 0, 1, kind))
                    figures = self.try_measure(meter, alt, kind, quantize_to=kind)
                    self.progress(ConvertProgress("requantize", 1, 1, kind))
                    if figures is not None:
                        alternatives = (Alternative(kind, alt.stat().st_size, figures),)
                    wait_for_removal(alt)
        return ConvertResult(self.finish(partial, plan.out_type), plan.out_type, EXACT_MODE, quality, plan,
                             alternatives=alternatives, quality_note=self.note)

    def forced(self, out_type: str) -> ConvertResult:
        plan = self.plan
        mode = requantised_mode(out_type, plan.reason)
        if out_type == "f16":
            partial = self.partial("f16")
            write_gguf(self.branch, partial, plain_types(self.branch, "f16"), set(), int(_FILE_TYPES["f16"]),
                       self.template, self.progress, self.cancel)
            return ConvertResult(self.finish(partial, "f16"), "f16", "dequantised to F16 (the exact reference)",
                                 None, plan)
        if out_type == "q8_0":  # straight from the float32 weights to Q8_0 with numpy (no F16 rounding first)
            partial = self.partial("q8_0")
            write_gguf(self.branch, partial, plain_types(self.branch, "q8_0"), set(), int(_FILE_TYPES["q8_0"]),
                       self.template, self.progress, self.cancel)
            quality = None
            if self.tokens > 0:
                with QualityMeter(self.reference(stage="reference"), self.tokens) as meter:
                    quality = self.try_measure(meter, partial, out_type)
            return ConvertResult(self.finish(partial, "q8_0"), "q8_0", mode, quality, plan, quality_note=self.note)
        reference = self.reference()
        partial = self.partial(out_type)
        self.progress(ConvertProgress("requantize", 0, 1, out_type))
        requantize(reference, partial, out_type, self.cancel)
        self.progress(ConvertProgress("requantize", 1, 1, out_type))
        quality = None
        if self.tokens > 0:
            with QualityMeter(reference, self.tokens) as meter:
                quality = self.try_measure(meter, partial, out_type)
        wait_for_removal(reference)
        return ConvertResult(self.finish(partial, out_type), out_type, mode, quality, plan, quality_note=self.note)

    def chosen(self) -> ConvertResult:
        """Requantise to each candidate of the size class, measure each, keep the closest to the F16 model."""
        plan = self.plan
        reference = self.reference()
        measured: list[Alternative] = []
        best: tuple[Alternative, Path] | None = None
        with QualityMeter(reference, self.tokens) as meter:
            for index, kind in enumerate(plan.candidates):
                path = self.partial(kind) if self.out is None else \
                    self.out.with_name(f"{self.out.name}.{kind.upper()}.partial")
                self.temporary.append(path)
                self.progress(ConvertProgress("requantize", index, len(plan.candidates), kind))
                figures = self.try_measure(meter, path, kind, quantize_to=kind)
                if figures is None:  # this type failed (noted); the others may still do
                    wait_for_removal(path)
                    continue
                entry = Alternative(kind, path.stat().st_size, figures)
                measured.append(entry)
                if best is None or _better(entry, best[0]):
                    if best is not None:
                        wait_for_removal(best[1])
                    best = (entry, path)
                else:
                    wait_for_removal(path)
        self.progress(ConvertProgress("requantize", len(plan.candidates), len(plan.candidates)))
        wait_for_removal(reference)
        if best is None:
            raise ConvertError(f"no type could be requantised and measured: {self.note}")
        winner, path = best
        choice = _choice_text(winner, measured, plan.settings.bits)
        return ConvertResult(self.finish(path, winner.out_type), winner.out_type,
                             requantised_mode(winner.out_type, plan.reason), winner.quality, plan, choice,
                             tuple(a for a in measured if a is not winner), self.note)


def run_conversion(folder: Path, out: Path | None = None, out_type: str | None = None, template: str | None = None,
                   progress: ProgressCallback | None = None, cancel: Callable[[], bool] | None = None,
                   quality_tokens: int = DEFAULT_QUALITY_TOKENS) -> ConvertResult:
    """Convert the GPTQ branch in ``folder`` to a GGUF and measure it; see :class:`ConvertResult`.

    ``out_type`` forces one of :data:`OUTPUT_TYPES` (exact when the branch's blocks are that type);
    by default a branch converts exactly where it can, and otherwise to the best measured type of its
    size class. ``template`` is a catalogue prompt template id to embed. ``progress`` receives
    :class:`ConvertProgress`; ``cancel`` is polled between tensors, row blocks and child steps and makes
    the call raise :class:`ConversionCancelled`. Work happens in ``*.partial`` files beside the
    output, renamed only when complete and removed on cancel or error. ``quality_tokens`` bounds the
    quality step (0: no step; then an act-order branch goes to the default type of its bits).
    """
    progress = progress or (lambda _p: None)
    cancel = cancel or (lambda: False)
    if out_type is not None and out_type not in OUTPUT_TYPES:
        raise ConvertError(f"unknown output type {out_type!r}; choose one of {', '.join(OUTPUT_TYPES)}")
    chat_template = resolve_template(template)
    branch = GptqBranch(Path(folder))
    try:
        plan = plan_conversion(branch, out_type)
        if plan.out_type is None and quality_tokens <= 0:  # nothing to choose by: the default of the bits
            default = DEFAULT_TYPE_FOR_BITS[branch.settings.bits]
            plan = replace(plan, out_type=default, candidates=(default,))
        out = Path(out) if out is not None else None
        target = out if out is not None else default_output(branch.folder, plan.out_type or plan.candidates[0])
        if target.is_dir():
            raise ConvertError(f"{target} is a folder; --out needs a file name ending in .gguf")
        if not target.parent.is_dir():
            raise ConvertError(f"the output folder {target.parent} does not exist")
        f16_bytes = sum(int(t.shape[0]) * (int(t.shape[1]) * 2 if len(t.shape) > 1 else 4) for t in branch.plan)
        note = ""
        if quality_tokens > 0 and (plan.exact or plan.out_type == "q8_0"):
            # The F16 copy serves only the quality step here: without room for it, convert and say so.
            with_reference = _disk_needed(plan, True, f16_bytes)
            free = shutil.disk_usage(target.parent).free
            if free < with_reference and free >= _disk_needed(plan, False, f16_bytes):
                quality_tokens = 0
                note = (f"the F16 copy it is measured against needs {f16_bytes / 1e9:.1f} GB more disk than the "
                        f"{free / 1e9:.1f} GB free")
        check_free_space(target.parent, _disk_needed(plan, quality_tokens > 0, f16_bytes))
        run = _Conversion(branch, plan, out, chat_template, progress, cancel, quality_tokens)
        run.note = note
        try:
            if plan.exact:
                return run.exact()
            if plan.out_type is not None:
                return run.forced(plan.out_type)
            return run.chosen()
        finally:
            run.cleanup()
    finally:
        branch.close()


def convert_branch(folder: Path, out: Path | None = None, out_type: str | None = None, template: str | None = None,
                   progress: ProgressCallback | None = None, cancel: Callable[[], bool] | None = None,
                   quality_tokens: int = DEFAULT_QUALITY_TOKENS) -> Path:
    """:func:`run_conversion`, returning the GGUF's path."""
    return run_conversion(folder, out, out_type, template, progress, cancel, quality_tokens).path
