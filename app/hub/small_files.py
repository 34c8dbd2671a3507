"""Fetch a small text file (model card, config.json) or the first bytes of a big one from the Hub."""

from __future__ import annotations

import json
import os
from typing import Any

from app.hub import session
from app.hub.errors import EntryNotFound, HubError, HubUnreachable, translate

MAX_TEXT_BYTES = 4 << 20  # a model card or config is far smaller; stop reading past this


def offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it, checked now (tests set it after import)."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE", "")
    return bool(constants.HF_HUB_OFFLINE) or value.strip().lower() in ("1", "true", "yes", "on")


def require_online(what: str) -> None:
    if offline():
        raise HubUnreachable(f"{what} needs the Hugging Face Hub, and offline mode is on (unset HF_HUB_OFFLINE); "
                             "the catalogue and installed models keep working")


def fetch_bytes(repo: str, revision: str, path: str, *, start: int = 0, length: int = MAX_TEXT_BYTES) -> bytes:
    """Bytes ``start`` to ``start + length`` of a file (an HTTP Range request); fewer at the end of the file."""
    require_online(f"reading {repo}")
    from huggingface_hub.utils import hf_raise_for_status

    headers = {**session.headers(), "Range": f"bytes={start}-{start + length - 1}"}
    try:
        with session.client().stream("GET", session.file_url(repo, revision, path), headers=headers,
                                     follow_redirects=True) as response:
            if response.status_code == 416:
                return b""
            hf_raise_for_status(response)
            chunks: list[bytes] = []
            received = 0
            skip = start if response.status_code == 200 else 0  # the server ignored the Range
            for chunk in response.iter_bytes():
                if skip:
                    dropped = min(skip, len(chunk))
                    chunk, skip = chunk[dropped:], skip - dropped
                chunks.append(chunk[:length - received])
                received += len(chunks[-1])
                if received >= length:
                    break
            return b"".join(chunks)
    except Exception as exc:
        raise translate(exc, repo=repo, revision=revision, path=path, endpoint=session.endpoint()) from None


def fetch_text(repo: str, revision: str, path: str) -> str | None:
    """A text file's content, or None when the branch has no such file."""
    try:
        data = fetch_bytes(repo, revision, path)
    except EntryNotFound:
        return None
    return data.decode("utf-8", errors="replace")


def fetch_json(repo: str, revision: str, path: str) -> dict[str, Any] | None:
    """A JSON object file (config.json, quantize_config.json), None when absent or not an object."""
    text = fetch_text(repo, revision, path)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise HubError(f"{path} in {repo}:{revision} is not valid JSON") from None
    return value if isinstance(value, dict) else None
