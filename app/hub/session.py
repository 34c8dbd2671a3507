"""The Hub endpoint, auth headers and HTTP session, all taken from huggingface_hub's own handling."""

from __future__ import annotations

import os

import httpx2
from huggingface_hub import HfApi, hf_hub_url
from huggingface_hub.utils import build_hf_headers, get_session

from app import __version__

DEFAULT_ENDPOINT = "https://huggingface.co"


def endpoint() -> str:
    """HF_ENDPOINT read now (huggingface_hub reads it once at import; tests and mirrors set it later)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def api() -> HfApi:
    client()  # the shared client gets its timeouts before the API uses it
    return HfApi(endpoint=endpoint(), library_name="hearth", library_version=__version__)


def file_url(repo: str, revision: str, path: str) -> str:
    return hf_hub_url(repo, path, revision=revision, endpoint=endpoint())


def headers() -> dict[str, str]:
    """User agent and the user's token (HF_TOKEN or `hf auth login`), no compression."""
    result = build_hf_headers(library_name="hearth", library_version=__version__)
    result["Accept-Encoding"] = "identity"
    return result


# huggingface_hub's client waits forever by default, and its listings pass no timeout of their own.
REQUEST_TIMEOUT = httpx2.Timeout(30.0, connect=15.0)


def client() -> httpx2.Client:
    """huggingface_hub's shared client: proxies, offline mode and request ids come with it.

    Unless someone configured timeouts on it already, requests that pass none (listings) get
    :data:`REQUEST_TIMEOUT`, so a stalled Hub cannot hang a thread forever.
    """
    shared = get_session()
    current = shared.timeout
    if current.connect is None and current.read is None and current.write is None and current.pool is None:
        shared.timeout = REQUEST_TIMEOUT
    return shared
