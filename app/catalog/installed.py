"""Which catalogue variants are on disk: installed (every file verified), partly downloaded, or not installed.

A file counts only once the downloader has checked it against the Hub's checksum and recorded it
in the folder's manifest (``app.hub.manifest``); bytes that merely exist are "partial".

A GPTQ branch converted to GGUF lives beside its branch folder as ``<branch>.<TYPE>.gguf`` with a
``<branch>.<TYPE>.gguf.json`` record (:class:`Conversion`) naming the source repo, branch and commit.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from app.catalog.model import Variant
from app.hub import manifest, split
from app.paths import variant_dir


class InstallState(Enum):
    INSTALLED = "installed"
    PARTIAL = "partial"
    NOT_INSTALLED = "not installed"


def variant_files(models_dir: Path, variant: Variant) -> list[Path]:
    """The files that make the variant usable once present (the joined file for split quants)."""
    folder = variant_dir(models_dir, variant.repo, variant.revision)
    if variant.join_to:
        return [folder / variant.join_to]
    return [folder / name for name in variant.files]


def _starter_state(folder: Path, variant: Variant) -> InstallState:
    """The starter comes whole from a wheel, not the Hub; its exact size stands for verification."""
    target = folder / variant.files[0]
    if target.is_file() and target.stat().st_size == variant.size_bytes:
        return InstallState.INSTALLED
    return InstallState.PARTIAL if target.exists() or (folder / f"{target.name}.partial").exists() \
        else InstallState.NOT_INSTALLED


def _any_bytes(folder: Path, names: set[str]) -> bool:
    """Whether any of ``names`` (or their partial files) is in ``folder``; all files when names is empty."""
    for path in folder.rglob("*"):
        if path.name == manifest.MANIFEST_NAME or not path.is_file():
            continue
        name = path.relative_to(folder).as_posix().removesuffix(".partial")
        if not names or name in names:
            return True
    return False


def install_state(models_dir: Path, variant: Variant) -> InstallState:
    """Installed when every file of the variant is verified (joined for split quants)."""
    folder = variant_dir(models_dir, variant.repo, variant.revision)
    if not folder.is_dir():
        return InstallState.NOT_INSTALLED
    if variant.source == "pypi":
        return _starter_state(folder, variant)
    data = manifest.load(folder)
    if not variant.files:  # a whole branch (GPTQ): complete when the branch download finished
        if manifest.branch_complete(folder, variant.revision, data):
            return InstallState.INSTALLED
        return InstallState.PARTIAL if _any_bytes(folder, set()) else InstallState.NOT_INSTALLED
    targets = [p.name for p in variant_files(models_dir, variant)]
    targets += split.missing_shards(targets)
    if all(manifest.is_verified(folder, name, data=data) for name in targets):
        return InstallState.INSTALLED
    names = {*variant.files, *targets}
    return InstallState.PARTIAL if _any_bytes(folder, names) else InstallState.NOT_INSTALLED


# -- GPTQ branches converted to GGUF ------------------------------------------------
CONVERSION_RECORD_SUFFIX = ".json"
CONVERSION_RECORD_VERSION = 1


@dataclass(frozen=True)
class QualityFigures:
    """How close a converted GGUF's next-token distributions are to the exact dequantised (F16) model's.

    Measured with llama.cpp on CPU over ``tokens`` positions of a fixed text: mean and largest KL
    divergence (nats, reference to candidate) and the share of positions whose top-1 token agrees.
    """

    kl_mean: float
    kl_max: float
    top1: float
    tokens: int

    @property
    def summary(self) -> str:
        """``KL 0.0012 · top-1 98.4%``."""
        return f"KL {self.kl_mean:.4g} · top-1 {100 * self.top1:.1f}%"

    @classmethod
    def from_json(cls, data: object) -> QualityFigures | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(float(data["kl_mean"]), float(data["kl_max"]), float(data["top1"]), int(data["tokens"]))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class Alternative:
    """Another output type measured during a conversion: its size and quality, and how to get it."""

    out_type: str
    size: int
    quality: QualityFigures | None = None

    @classmethod
    def from_json(cls, data: object) -> Alternative | None:
        if not isinstance(data, dict) or not isinstance(data.get("out_type"), str):
            return None
        size = data.get("size")
        quality = QualityFigures.from_json(data.get("quality"))
        return cls(data["out_type"], size if isinstance(size, int) else 0, quality)


@dataclass(frozen=True)
class Conversion:
    """A GGUF that Hearth converted from a GPTQ branch, as its JSON record beside the file says."""

    path: Path
    out_type: str
    size: int
    repo: str | None = None
    branch: str | None = None
    commit: str | None = None
    variant_id: str | None = None
    template: str | None = None
    source_folder: str = ""
    gptq: str = ""
    # "exact GPTQ weights" or "requantised to Q4_K_M (from act-order groups)"; empty in older records.
    mode: str = ""
    quality: QualityFigures | None = None
    choice: str = ""  # why this output type, when Hearth chose it by measurement
    alternatives: tuple[Alternative, ...] = ()
    quality_note: str = ""  # why the quality is not measured, when the step failed

    @property
    def exact(self) -> bool:
        return self.mode.startswith("exact")

    @property
    def type_label(self) -> str:
        """``Q4_K_M``, ``Q8_0``, ``F16``."""
        return self.out_type.upper()

    @property
    def detail(self) -> str:
        """``Q4_K_M · converted from GPTQ main``: the source in a few words."""
        branch = self.branch or Path(self.source_folder).name or "branch"
        return f"{self.type_label} · converted from GPTQ {branch}"

    @property
    def quality_text(self) -> str:
        """``exact GPTQ weights · KL 1.2e-06 · top-1 100.0% vs the F16 model``, or what is known."""
        parts = [self.mode] if self.mode else []
        if self.quality is not None:
            parts.append(f"{self.quality.summary} vs the F16 model")
        return " · ".join(parts)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = self.path.name
        return {"version": CONVERSION_RECORD_VERSION, "kind": "hearth-gptq-conversion", **data}


def conversion_record_path(gguf_path: Path) -> Path:
    return gguf_path.with_name(gguf_path.name + CONVERSION_RECORD_SUFFIX)


def converted_output(branch_folder: Path, out_type: str) -> Path:
    """Where a branch's conversion goes: beside (not inside) the branch folder, ``<branch>.<TYPE>.gguf``."""
    return branch_folder.with_name(f"{branch_folder.name}.{out_type.upper()}.gguf")


def write_conversion(conversion: Conversion) -> Path:
    """Write the record beside the GGUF (atomically); return its path."""
    record = conversion_record_path(conversion.path)
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(json.dumps(conversion.to_json(), indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, record)
    return record


def read_conversion(gguf_path: Path) -> Conversion | None:
    """The record of a converted GGUF, or None when there is none or the file is not the one recorded."""
    try:
        data = json.loads(conversion_record_path(gguf_path).read_text(encoding="utf-8"))
        size = gguf_path.stat().st_size
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("kind") != "hearth-gptq-conversion" or data.get("size") != size:
        return None
    text = {k: data.get(k) if isinstance(data.get(k), str) else None
            for k in ("repo", "branch", "commit", "variant_id", "template")}
    alternatives = data.get("alternatives")
    return Conversion(path=gguf_path, out_type=str(data.get("out_type") or ""), size=size,
                      source_folder=str(data.get("source_folder") or ""), gptq=str(data.get("gptq") or ""),
                      mode=str(data.get("mode") or ""), quality=QualityFigures.from_json(data.get("quality")),
                      choice=str(data.get("choice") or ""), quality_note=str(data.get("quality_note") or ""),
                      alternatives=tuple(a for a in map(Alternative.from_json, alternatives or ()) if a is not None)
                      if isinstance(alternatives, list) else (),
                      **text)


def converted_model(models_dir: Path, variant: Variant) -> Conversion | None:
    """The newest complete conversion of a GPTQ variant's branch (any output type), if there is one."""
    if variant.format != "gptq":
        return None
    folder = variant_dir(models_dir, variant.repo, variant.revision)
    found = []
    with contextlib.suppress(OSError):
        for path in folder.parent.glob(f"{folder.name}.*.gguf"):
            conversion = read_conversion(path)
            if conversion is not None and conversion.repo == variant.repo and conversion.branch == variant.revision \
                    and path == converted_output(folder, conversion.out_type):
                found.append((path.stat().st_mtime_ns, conversion))
    return max(found, key=lambda item: item[0])[1] if found else None


def converted_path(models_dir: Path, variant: Variant) -> Path | None:
    conversion = converted_model(models_dir, variant)
    return conversion.path if conversion else None
