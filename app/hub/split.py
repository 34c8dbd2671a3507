"""Multi-part models: ``.gguf-split-a/-b`` parts joined after download, ``-00001-of-00003.gguf`` shards kept."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from app.hub import disk, manifest, nofollow
from app.hub.hashing import new_hash

SPLIT_PART = re.compile(r"^(?P<target>.+\.gguf)-split-(?P<letter>[a-z]+)$")
SHARD = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")


def split_target(path: str) -> str | None:
    """``x.gguf`` for ``x.gguf-split-b``; None for any other name."""
    match = SPLIT_PART.match(path)
    return match["target"] if match else None


def shard_siblings(path: str) -> list[str]:
    """All shard names of the set ``path`` belongs to (``[]`` if it is not a shard)."""
    match = SHARD.match(path)
    if not match:
        return []
    count = int(match["count"])
    return [f"{match['stem']}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1)]


def expand_selection(selected: Iterable[str], available: Iterable[str]) -> list[str]:
    """Add the missing parts or shards of any multi-part file in ``selected`` (a part alone is useless)."""
    available = list(available)
    chosen = list(dict.fromkeys(selected))
    targets = {split_target(p) for p in chosen} - {None}
    shard_sets = {s for p in chosen for s in shard_siblings(p)}
    for path in available:
        if path not in chosen and (split_target(path) in targets or path in shard_sets):
            chosen.append(path)
    return chosen


def join_groups(paths: Iterable[str]) -> dict[str, list[str]]:
    """Split parts grouped by the file they make, parts in order (``-split-a`` first)."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        target = split_target(path)
        if target:
            groups.setdefault(target, []).append(path)
    return {t: sorted(parts, key=lambda p: (len(p), p)) for t, parts in groups.items()}


def missing_shards(paths: Iterable[str]) -> list[str]:
    """Shards named by the sets in ``paths`` that are not in ``paths``."""
    present = set(paths)
    return sorted({s for p in present for s in shard_siblings(p)} - present)


def join_parts(folder: Path, parts: list[str], target: str, on_bytes: Callable[[int], None] | None = None) -> Path:
    """Concatenate verified parts into ``target``, hash it on the way, record it, then delete the parts.

    A join cut short leaves only ``target.joining`` behind; the parts stay until the joined
    file is recorded in the manifest, so running the download again joins again.
    """
    sources = [folder / p for p in parts]
    total = sum(p.stat().st_size for p in sources)
    disk.ensure_space(folder, total, f"joining {target}")
    out_path = folder / target
    tmp = out_path.with_name(out_path.name + ".joining")
    digest = new_hash(sha256=True, size=total)
    fd = nofollow.open_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for src in sources:
            with src.open("rb") as f:
                while block := f.read(16 << 20):
                    disk.write_all(fd, block)
                    digest.update(block)
                    if on_bytes:
                        on_bytes(len(block))
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, out_path)
    manifest.record(folder, target, checksum=digest.hexdigest(), parts=list(parts))
    for src, name in zip(sources, parts, strict=True):
        src.unlink(missing_ok=True)
        manifest.forget(folder, name)
    return out_path
