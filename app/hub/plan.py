"""What one download is (a request), which files it means (a plan), and running it to the end."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.catalog.model import Variant
from app.hub import disk, manifest, nofollow, split
from app.hub.entries import target_inside
from app.hub.errors import HubError
from app.hub.listing import HubFile, RepoListing, list_files
from app.hub.refs import RepoRef
from app.hub.transfer import Control, download_file, partial_path, remove_partial
from app.paths import variant_dir

ProgressFn = Callable[[int], None]
PhaseFn = Callable[[str], None]


@dataclass(frozen=True)
class DownloadRequest:
    """What the user asked for: files of a repo branch (all, globs, or exact names), or a local import."""

    repo: str
    revision: str = "main"
    includes: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    join_to: str | None = None
    dest: str | None = None
    variant_id: str | None = None
    title: str = ""
    size_hint: int = 0
    import_from: str | None = None
    source: str = "hub"

    @property
    def label(self) -> str:
        if self.title:
            return self.title
        what = f"{self.repo}:{self.revision}"
        chosen = self.files or self.includes
        return f"{what} · {', '.join(chosen)}" if chosen else what

    def folder(self, models_dir: Path) -> Path:
        return Path(self.dest) if self.dest else variant_dir(models_dir, self.repo, self.revision)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DownloadRequest:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("includes", "files"):
            known[key] = tuple(known.get(key) or ())
        return cls(**known)


def request_for_variant(variant: Variant, label: str = "") -> DownloadRequest:
    """A catalogue variant: its named files (joined when split), or its whole branch (GPTQ)."""
    return DownloadRequest(
        repo=variant.repo, revision=variant.revision, files=variant.files, join_to=variant.join_to,
        variant_id=variant.id, title=label or f"{variant.repo} · {variant.label}", size_hint=variant.size_bytes,
        source=variant.source,
    )


def request_for_ref(ref: RepoRef, includes: tuple[str, ...] = (), dest: str | None = None) -> DownloadRequest:
    files = (ref.path,) if ref.path else ()
    return DownloadRequest(repo=ref.repo, revision=ref.branch, includes=includes or ref.includes, files=files,
                           dest=dest)


@dataclass
class DownloadPlan:
    """The files a request resolved to on the Hub, and where they go."""

    request: DownloadRequest
    listing: RepoListing
    files: list[HubFile]
    folder: Path
    joins: dict[str, list[str]] = field(default_factory=dict)

    @property
    def whole_branch(self) -> bool:
        return not (self.request.files or self.request.includes)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def final_names(self) -> list[str]:
        """What is left once done: joined files instead of their parts."""
        parts = {p for ps in self.joins.values() for p in ps}
        return [*self.joins, *(f.path for f in self.files if f.path not in parts)]

    def is_installed(self) -> bool:
        data = manifest.load(self.folder)
        return all(manifest.is_verified(self.folder, name, data=data) for name in self.final_names())

    def bytes_to_fetch(self) -> int:
        """Bytes not yet on disk: verified files and partial files count as there."""
        data = manifest.load(self.folder)
        missing = 0
        for f in self.files:
            target = split.split_target(f.path)
            if manifest.is_verified(self.folder, f.path, data=data) or (
                target and manifest.is_verified(self.folder, target, data=data)
            ):
                continue
            part = partial_path(self.folder / f.path)
            missing += f.size - (os.lstat(part).st_size if nofollow.kind(part) == "file" else 0)
        return max(missing, 0)


def plan(request: DownloadRequest, models_dir: Path, listing: RepoListing | None = None) -> DownloadPlan:
    """Resolve a request against the branch's listing (fetched now unless given)."""
    listing = listing or list_files(request.repo, request.revision)
    refused = listing.refused_among(request.files, request.includes)
    if refused is not None:
        raise HubError(refused.message(f"{listing.repo}:{listing.revision}")
                       + "; nothing was downloaded (choose other files with --include)")
    if request.files:
        chosen = [listing.file(p).path for p in request.files]
    else:
        chosen = [f.path for f in listing.select(request.includes)]
    chosen = split.expand_selection(chosen, (f.path for f in listing.files))
    files = [listing.file(p) for p in chosen]
    joins = split.join_groups(f.path for f in files)
    if request.join_to and request.join_to not in joins:
        raise HubError(f"{request.label}: the parts of {request.join_to} are not in {listing.repo}:{listing.revision}")
    folder = request.folder(models_dir)
    if folder.exists() and not folder.is_dir():
        raise HubError(f"cannot download into {folder}: it is a file, not a folder; choose another --dest")
    clash = sorted(set(joins) & {f.path for f in listing.files})
    if clash:
        raise HubError(f"{listing.repo}:{listing.revision} lists both {clash[0]} and parts to join into it; "
                       "download the file or its parts with --include")
    return DownloadPlan(request, listing, files, folder, joins)


def execute(p: DownloadPlan, control: Control, on_bytes: ProgressFn, on_phase: PhaseFn | None = None) -> list[Path]:
    """Download, verify and join everything in the plan; returns the final files."""
    phase = on_phase or (lambda _text: None)
    if p.is_installed():
        on_bytes(p.total_bytes)
        return [p.folder / n for n in p.final_names()]
    join_room = sum(f.size for f in p.files if split.split_target(f.path))
    disk.ensure_space(p.folder, p.bytes_to_fetch() + join_room, p.request.label)
    joined = {t for t in p.joins if manifest.is_verified(p.folder, t)}
    for number, f in enumerate(p.files, start=1):
        target = split.split_target(f.path)
        if target in joined:
            on_bytes(f.size)
            continue
        phase(f"file {number} of {len(p.files)}: {f.path}" if len(p.files) > 1 else f.path)
        dest = target_inside(p.folder, f.path)
        download_file(p.listing.repo, p.listing.commit, f, dest, control, on_bytes, folder=p.folder, on_notice=phase)
    for target, parts in p.joins.items():
        if target not in joined:
            control.check()
            phase(f"joining {len(parts)} parts into {target}")
            split.join_parts(p.folder, parts, target)
    if p.whole_branch:
        manifest.record_branch(p.folder, p.listing.repo, p.listing.revision, p.listing.commit, p.final_names())
    return [p.folder / n for n in p.final_names()]


def discard_partials(request: DownloadRequest, models_dir: Path) -> None:
    """Remove the partial files a cancelled request left (verified files stay)."""
    folder = request.folder(models_dir)
    if not folder.is_dir():
        return
    for part in folder.rglob("*.partial"):
        name = part.relative_to(folder).as_posix()[: -len(".partial")]
        wanted = (
            (not request.files and not request.includes)
            or name in request.files
            or any(fnmatch.fnmatchcase(name, g) or fnmatch.fnmatchcase(part.name[:-8], g) for g in request.includes)
            or split.split_target(name) == request.join_to
        )
        if wanted:
            remove_partial(folder / name)
