"""What to convert (a folder, a Hub branch or a catalogue GPTQ variant), fetching it first, and the record after."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.catalog import Catalog, Model, Variant, load_catalog
from app.catalog.installed import Conversion, write_conversion
from app.convert.converter import DEFAULT_QUALITY_TOKENS, ProgressCallback, gptq_settings, run_conversion
from app.convert.errors import ConvertError
from app.hub import manifest
from app.hub.plan import DownloadRequest, execute, plan, request_for_ref, request_for_variant
from app.hub.refs import parse_repo_ref
from app.hub.transfer import Control


@dataclass(frozen=True)
class ConvertSource:
    """A GPTQ branch to convert: its folder, and the download that fills it when it comes from the Hub.

    ``template`` is the catalogue prompt template to embed (the catalogue model's, when the branch is
    a catalogue variant); ``variant_id`` links the result to that variant.
    """

    folder: Path
    request: DownloadRequest | None = None
    template: str | None = None
    variant_id: str | None = None
    title: str = ""


def source_for_variant(model: Model, variant: Variant, models_dir: Path) -> ConvertSource:
    """A catalogue GPTQ variant: its whole branch, converted with the model's own prompt template."""
    if variant.format != "gptq":
        raise ConvertError(f"{variant.id} is already a GGUF that llama.cpp runs: download it with "
                           f"`hearth download {variant.id}` instead of converting it")
    title = f"{model.name} · {variant.label}"
    request = request_for_variant(variant, title)
    return ConvertSource(request.folder(models_dir), request, model.template.id, variant.id, title)


def _catalogue_gptq(catalog: Catalog, repo: str, branch: str) -> tuple[Model, Variant] | None:
    for model, variant in catalog.variants():
        if variant.format == "gptq" and variant.repo == repo and variant.revision == branch:
            return model, variant
    return None


def resolve_source(target: str, models_dir: Path, catalog: Catalog | None = None) -> ConvertSource:
    """``PATH`` (an existing folder), a catalogue variant id, or ``REPO[:BRANCH]`` / a Hub URL."""
    path = Path(target).expanduser()
    if path.is_dir():
        return ConvertSource(path)
    if path.exists():
        raise ConvertError(f"{path} is a file; pass the folder of a downloaded GPTQ branch, or REPO:BRANCH")
    catalog = catalog or load_catalog()
    if target.count(":") >= 2 and "://" not in target:
        try:
            model, variant = catalog.variant(target)
        except KeyError:
            raise ConvertError(f"{target!r} is not a catalogue variant (see `hearth catalog`) nor a folder") from None
        return source_for_variant(model, variant, models_dir)
    if "/" in target and ":" not in target and (target.startswith((".", "~", "/")) or target.count("/") > 1):
        raise ConvertError(f"{path} is not a folder; pass the folder of a downloaded GPTQ branch, or REPO:BRANCH")
    ref = parse_repo_ref(target)
    if ref.path:
        raise ConvertError(f"{target!r} names one file; pass the repo and branch (OWNER/NAME:BRANCH) to convert")
    matched = _catalogue_gptq(catalog, ref.repo, ref.branch)
    if matched is not None:
        return source_for_variant(*matched, models_dir)
    request = request_for_ref(ref)
    return ConvertSource(request.folder(models_dir), request, title=f"{ref.repo}:{ref.branch}")


def download_source(source: ConvertSource, models_dir: Path, control: Control, on_bytes: Callable[[int], None],
                    on_phase: Callable[[str], None] | None = None,
                    on_total: Callable[[int], None] | None = None) -> None:
    """Fetch the source's branch (verified, resumable; nothing when already complete)."""
    if source.request is None:
        return
    resolved = plan(source.request, models_dir)
    if on_total is not None:
        on_total(resolved.total_bytes)
    execute(resolved, control, on_bytes, on_phase)


def _branch_record(folder: Path) -> tuple[str | None, str | None, str | None]:
    """(repo, branch, commit) of a folder Hearth downloaded as a whole branch, else Nones."""
    branches = manifest.load(folder).get("branches")
    if not isinstance(branches, dict) or not branches:
        return None, None, None
    branch, entry = next((b, e) for b, e in branches.items())
    for name, candidate in branches.items():  # the folder is named after its branch
        if folder.name in (name, name.replace("/", "_")):
            branch, entry = name, candidate
    if not isinstance(entry, dict):
        return None, None, None
    return entry.get("repo"), branch, entry.get("commit")


def convert_source(source: ConvertSource, out: Path | None = None, out_type: str | None = None,
                   template: str | None = None, progress: ProgressCallback | None = None,
                   cancel: Callable[[], bool] | None = None,
                   quality_tokens: int = DEFAULT_QUALITY_TOKENS) -> Conversion:
    """Convert the source's folder and write the record linking the GGUF to its repo, branch and commit,
    with how its weights got there (exact or requantised) and their measured quality.

    The GGUF goes beside the branch folder (:func:`app.catalog.installed.converted_output`) unless
    ``out`` says otherwise; ``template`` overrides the source's own. A folder Hearth downloaded is
    matched to its catalogue variant, whose prompt template is then embedded.
    """
    folder = source.folder
    if not folder.is_dir():
        raise ConvertError(f"there is no folder {folder}; download the branch first")
    settings = gptq_settings(folder)
    repo, branch, commit = _branch_record(folder)
    if source.request is not None:
        repo, branch = source.request.repo, source.request.revision
    variant_id, chosen_template = source.variant_id, template or source.template
    if variant_id is None and repo and branch:
        matched = _catalogue_gptq(load_catalog(), repo, branch)
        if matched is not None:
            variant_id = matched[1].id
            chosen_template = chosen_template or matched[0].template.id
    result = run_conversion(folder, out, out_type, chosen_template, progress, cancel, quality_tokens)
    path = result.path
    conversion = Conversion(path=path, out_type=result.out_type, size=path.stat().st_size, repo=repo, branch=branch,
                            commit=commit, variant_id=variant_id, template=chosen_template,
                            source_folder=str(folder.resolve()), gptq=settings.label, mode=result.mode,
                            quality=result.quality, choice=result.choice, alternatives=result.alternatives,
                            quality_note=result.quality_note)
    write_conversion(conversion)
    return conversion
