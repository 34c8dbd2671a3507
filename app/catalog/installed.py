"""Which catalogue variants are on disk: installed (every file verified), partly downloaded, or not installed.

A file counts only once the downloader has checked it against the Hub's checksum and recorded it
in the folder's manifest (``app.hub.manifest``); bytes that merely exist are "partial".
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

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
