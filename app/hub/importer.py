"""Import a ``.gguf`` file the user already has: copied into the models folder, hashed on the way."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from app.errors import HearthError
from app.hub import disk, manifest, nofollow
from app.hub.errors import translate
from app.hub.hashing import new_hash
from app.hub.transfer import Control, partial_path
from app.paths import safe_component

GGUF_MAGIC = b"GGUF"
IMPORTED = "imported"


class ImportFailed(HearthError):
    """The file cannot be imported (not a GGUF file, unreadable)."""


def imported_path(models_dir: Path, source: Path) -> Path:
    """Where an imported file lives: ``models/imported/<stem>/<file name>``."""
    return models_dir / IMPORTED / safe_component(source.stem) / source.name


def check_gguf(source: Path) -> None:
    try:
        with source.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ImportFailed(f"cannot read {source}: {exc.strerror or exc}") from None
    if magic != GGUF_MAGIC:
        raise ImportFailed(f"{source.name} is not a GGUF model file (llama.cpp loads .gguf files only)")


def import_gguf(source: Path, models_dir: Path, control: Control, on_bytes: Callable[[int], None]) -> Path:
    """Copy ``source`` into the models folder and record its sha256; returns the new path."""
    check_gguf(source)
    dest = imported_path(models_dir, source)
    size = source.stat().st_size
    if manifest.is_verified(dest.parent, dest.name):
        on_bytes(size)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    disk.ensure_space(dest.parent, size, source.name)
    part = partial_path(dest)
    digest = new_hash(sha256=True, size=size)
    fd = nofollow.open_fd(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        with source.open("rb") as src:
            while block := src.read(8 << 20):
                control.check()
                disk.write_all(fd, block)
                digest.update(block)
                on_bytes(len(block))
    except BaseException as exc:
        os.close(fd)
        part.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise translate(exc, repo="", path=source.name) from None
        raise
    os.close(fd)
    os.replace(part, dest)
    manifest.record(dest.parent, dest.name, checksum=digest.hexdigest(), source={"imported_from": str(source)})
    return dest
