"""Search the Hub's models (HfApi.list_models): downloads, likes, last update and format per result."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from app.hub import session
from app.hub.errors import HubError, HubUnreachable, translate
from app.hub.listing import LISTING_TIMEOUT_S, within_deadline
from app.hub.small_files import require_online

CONNECT_CHECK_S = 5.0
FORMATS = ("gguf", "gptq", "awq", "exl2", "mlx", "safetensors")
_EXPAND = ["downloads", "likes", "lastModified", "tags", "pipeline_tag", "gated", "private"]


@dataclass(frozen=True)
class SearchResult:
    """One repo the Hub found. ``format`` is what Hearth makes of it (gguf, gptq, awq, ...)."""

    repo: str
    downloads: int
    likes: int
    last_modified: datetime | None
    tags: tuple[str, ...]
    pipeline_tag: str | None
    gated: bool

    @property
    def format(self) -> str:
        name = self.repo.lower()
        tags = {t.lower() for t in self.tags}
        for fmt in FORMATS[:-1]:
            if fmt in tags or name.endswith(f"-{fmt}") or f"-{fmt}-" in name or f"_{fmt}" in name:
                return fmt
        return "safetensors" if "safetensors" in tags else "other"

    @property
    def runnable(self) -> bool:
        """GGUF runs in llama.cpp; GPTQ converts; the rest do not."""
        return self.format in ("gguf", "gptq")

    def to_json(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "format": self.format,
            "downloads": self.downloads,
            "likes": self.likes,
            "last_modified": self.last_modified.isoformat() if self.last_modified else None,
            "pipeline_tag": self.pipeline_tag,
            "gated": self.gated,
            "tags": list(self.tags),
        }


def _result(info: Any) -> SearchResult:
    modified = getattr(info, "last_modified", None) or getattr(info, "created_at", None)
    gated = getattr(info, "gated", None)
    return SearchResult(
        repo=str(info.id),
        downloads=int(getattr(info, "downloads", None) or 0),
        likes=int(getattr(info, "likes", None) or 0),
        last_modified=modified if isinstance(modified, datetime) else None,
        tags=tuple(getattr(info, "tags", None) or ()),
        pipeline_tag=getattr(info, "pipeline_tag", None),
        gated=bool(gated) and gated is not False,
    )


def _reachable_or_raise() -> None:
    """Fail at once when nothing listens at the endpoint (list_models' own retries take 20+ s).

    Skipped behind a proxy, where a direct connection says nothing about the proxied one.
    """
    if any(os.environ.get(n) for n in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return
    url = urlparse(session.endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=CONNECT_CHECK_S).close()
    except OSError:
        raise HubUnreachable(
            f"cannot reach {session.endpoint()}: check your internet connection (or HF_ENDPOINT); "
            "the catalogue and installed models keep working"
        ) from None


def search_models(query: str, fmt: str | None = None, limit: int = 30) -> list[SearchResult]:
    """Models matching ``query``, most downloaded first; ``fmt`` keeps one format (gguf, gptq)."""
    query = query.strip()
    if not query:
        raise HubError("nothing to search for: give a few words, e.g. `hearth search mistral 7b`")
    require_online("searching")
    _reachable_or_raise()

    def call() -> list[SearchResult]:
        found = session.api().list_models(
            search=query, filter=fmt or None, sort="downloads", limit=limit * 2 if fmt else limit,
            expand=_EXPAND,  # type: ignore[arg-type]
        )
        return [_result(info) for info in found]

    try:
        results = within_deadline(call, LISTING_TIMEOUT_S, f"models matching {query!r}")
    except Exception as exc:
        raise translate(exc, repo=f"search {query!r}", endpoint=session.endpoint()) from None
    if fmt:
        results = [r for r in results if r.format == fmt]
    return sorted(results, key=lambda r: -r.downloads)[:limit]
