"""Which catalogue variants are on disk: installed, partly downloaded, or not installed."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from app.catalog.model import Variant
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


def install_state(models_dir: Path, variant: Variant) -> InstallState:
    """Installed when every file of the variant is complete; partial when some bytes are there."""
    folder = variant_dir(models_dir, variant.repo, variant.revision)
    if not folder.is_dir():
        return InstallState.NOT_INSTALLED
    if variant.format == "gptq":
        complete = (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))
        return InstallState.INSTALLED if complete else (
            InstallState.PARTIAL if any(folder.iterdir()) else InstallState.NOT_INSTALLED
        )
    targets = variant_files(models_dir, variant)
    if all(p.is_file() for p in targets):
        # The starter comes whole from a wheel; its size is known exactly.
        if variant.source == "pypi" and targets[0].stat().st_size != variant.size_bytes:
            return InstallState.PARTIAL
        return InstallState.INSTALLED
    names = {*variant.files, *(f"{n}.partial" for n in variant.files)}
    return InstallState.PARTIAL if any(p.name in names for p in folder.iterdir()) else InstallState.NOT_INSTALLED
