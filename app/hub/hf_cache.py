"""Files the Hugging Face cache already holds (``hf download``, transformers) reused instead of fetched.

The cache keeps each repo under ``models--OWNER--NAME/blobs/<id>``, where the id is the file's sha256
for LFS files and its git blob id for the others: exactly the checksums Hearth's listing gives. A
blob of the right size whose bytes hash to that checksum is hard-linked into the models folder
(copied when the cache is on another file system), so it costs neither bandwidth nor disk space.
The cache itself is never written to.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

from app.hub import manifest
from app.hub.errors import HubError
from app.hub.hashing import feed_from_disk, new_hash
from app.hub.listing import HubFile

REUSE_SUFFIX = ".from-hf-cache"  # the link's name until its checksum is confirmed


def hub_cache_dir() -> Path:
    """HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub (read now, as huggingface_hub does)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME")
    if not home:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        home = os.path.join(xdg, "huggingface")
    return Path(home).expanduser() / "hub"


def cache_enabled() -> bool:
    """HEARTH_REUSE_HF_CACHE=0 turns the reuse off."""
    return os.environ.get("HEARTH_REUSE_HF_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def repo_folder(repo: str, cache: Path | None = None) -> Path:
    """``models--OWNER--NAME``: how huggingface_hub names a model repo's cache folder."""
    return (cache or hub_cache_dir()) / ("models--" + repo.replace("/", "--"))


def cached_blob(repo: str, file: HubFile, cache: Path | None = None) -> Path | None:
    """The cache's copy of ``file`` if one of the right size is there (its bytes are not checked yet)."""
    checksum = file.sha256 or file.blob_id
    if not checksum or not cache_enabled():
        return None
    blob = repo_folder(repo, cache) / "blobs" / checksum
    try:
        return blob if blob.is_file() and blob.stat().st_size == file.size else None
    except OSError:
        return None


def _link_or_copy(source: Path, target: Path) -> str:
    """Hard-link ``source`` to ``target``; copy when linking is impossible. Returns "linked" or "copied"."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
        return "linked"
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOTSUP,
                             errno.EOPNOTSUPP, errno.ENOSYS):
            raise
    shutil.copyfile(source, target)
    return "copied"


def reuse_cached(repo: str, file: HubFile, dest: Path, folder: Path | None = None) -> str | None:
    """Put the cache's copy of ``file`` at ``dest`` if it has the listing's checksum.

    Returns "linked" or "copied" on success, None when the cache has no good copy (then nothing was
    changed at ``dest``). ``folder``'s manifest records it (by its path under ``folder``; by default
    ``dest``'s own folder). The bytes are hashed before anything is put in place, so a damaged cache
    file is never used; the link is renamed into place only after that check.
    """
    blob = cached_blob(repo, file)
    if blob is None:
        return None
    checksum = file.sha256 or file.blob_id
    digest = new_hash(sha256=file.is_lfs, size=file.size)
    try:
        feed_from_disk(digest, blob, 0, file.size)
    except (OSError, HubError):  # unreadable, or a link where a blob should be
        return None
    if digest.hexdigest() != checksum:
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.with_name(dest.name + REUSE_SUFFIX)
    try:
        how = _link_or_copy(blob, staging)
        os.replace(staging, dest)
    except OSError:
        with contextlib.suppress(OSError):
            staging.unlink(missing_ok=True)
        return None
    where, name = (folder, dest.relative_to(folder).as_posix()) if folder is not None else (dest.parent, dest.name)
    manifest.record(where, name, checksum=checksum, source={"reused_from": str(blob), "how": how})
    return how
