"""Find the .gguf file behind MODEL on the command line: a path, or an installed catalogue model."""

from __future__ import annotations

from pathlib import Path

from app.catalog.installed import InstallState, converted_path, install_state, variant_files
from app.catalog.model import Catalog
from app.errors import HearthError
from app.paths import app_dirs


def resolve_model_path(model: str, catalog: Catalog, models_dir: Path | None = None) -> Path:
    """A ``.gguf`` path as given, or the first installed GGUF variant of a catalogue model,
    or else a GGUF converted from one of its GPTQ branches."""
    candidate = Path(model).expanduser()
    if model.endswith(".gguf") or candidate.exists():
        if not candidate.is_file():
            raise HearthError(f"{candidate} does not exist (expected a .gguf model file)")
        return candidate
    try:
        entry = catalog.model(model)
    except KeyError:
        known = ", ".join(m.id for m in catalog.models)
        raise HearthError(f"{model!r} is neither a .gguf file nor a catalogue model (known: {known})") from None
    models_dir = models_dir or app_dirs().models
    for variant in entry.variants:
        if variant.runnable and install_state(models_dir, variant) is InstallState.INSTALLED:
            return variant_files(models_dir, variant)[0]
    for variant in entry.variants:
        converted = converted_path(models_dir, variant)
        if converted is not None:
            return converted
    hint = " (run `hearth starter`)" if entry.starter else " (download it from the Catalogue page)"
    raise HearthError(f"{entry.name} has no GGUF file installed{hint}")
