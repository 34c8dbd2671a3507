"""What is installed and how to run it: one answer for the window's model list and the command line's MODEL.

The scan covers the starter, catalogue variants (verified downloads), GGUFs converted from GPTQ
branches, imported files, and files used in place from added model folders (app.model_folders).
A catalogue model named on the command line resolves to the same file the window runs for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.catalog import Catalog
from app.catalog.installed import InstallState, converted_path, install_state, read_conversion, variant_files
from app.catalog.starter import starter_path, starter_variant
from app.engine.chat_format import match_catalogue
from app.errors import HearthError
from app.model_folders import registered_models
from app.paths import app_dirs


@dataclass(frozen=True)
class InstalledModel:
    """A model file the user can chat with, and the name to show for it."""

    path: Path
    name: str
    detail: str = ""
    model_id: str | None = None  # the catalogue model it belongs to, when it does


def installed_models(catalog: Catalog, models_dir: Path) -> list[InstalledModel]:
    """The starter model first (when installed), then every other complete GGUF, by name.

    A GGUF converted from a GPTQ branch shows its catalogue model's name and "converted from GPTQ <branch>".
    """
    found: list[InstalledModel] = []
    seen: set[Path] = set()
    starter = catalog.starter()
    if starter is not None:
        variant = starter_variant(starter)
        path = starter_path(models_dir, variant)
        if install_state(models_dir, variant) is InstallState.INSTALLED:
            found.append(InstalledModel(path, starter.name, f"{variant.quant or 'GGUF'} · starter", starter.id))
            seen.add(path.resolve())
    others = []
    own = list(models_dir.rglob("*.gguf")) if models_dir.is_dir() else []
    in_place = set(registered_models())  # other apps' folders and files used where they are
    if own or in_place:
        for path in [*own, *in_place]:
            if path.resolve() in seen or not path.is_file():
                continue
            seen.add(path.resolve())
            if path in in_place and path not in own:
                others.append(InstalledModel(path, path.stem, f"in place · {path.parent.name or path.parent}"))
                continue
            matched = match_catalogue(path, catalog, models_dir)
            conversion = read_conversion(path)
            if conversion is not None:
                name = matched[0].name if matched is not None else path.name.removesuffix(".gguf")
                others.append(InstalledModel(path, name, conversion.detail, matched[0].id if matched else None))
            elif matched is not None:
                model, variant = matched
                others.append(InstalledModel(path, model.name, variant.quant or variant.label, model.id))
            else:
                others.append(InstalledModel(path, path.stem, "local file"))
    found.extend(sorted(others, key=lambda m: (m.name.lower(), m.detail)))
    return found


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


def remote_models() -> list[InstalledModel]:
    """The models of the user's remote endpoints (as last listed), named "remote: ENDPOINT"."""
    from app.remote.endpoints import EndpointStore
    from app.remote.messages import remote_path

    return [InstalledModel(Path(remote_path(endpoint.name, model)), model, f"remote: {endpoint.name}")
            for endpoint in EndpointStore().load() for model in endpoint.models]
