"""Parse what a user types for a repo: ``REPO``, ``REPO:BRANCH`` or a huggingface.co URL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from app.errors import HearthError

DEFAULT_BRANCH = "main"
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_REPO = re.compile(rf"^(?:{_NAME}/)?{_NAME}$")
_HUB_HOSTS = {"huggingface.co", "www.huggingface.co", "hf.co"}


class BadRepoRef(HearthError):
    """The text is not a repo, ``repo:branch`` or Hub URL."""


@dataclass(frozen=True)
class RepoRef:
    """A repository at a branch (``revision`` None means the default branch), maybe one file in it."""

    repo: str
    revision: str | None = None
    path: str | None = None

    @property
    def branch(self) -> str:
        return self.revision or DEFAULT_BRANCH

    def __str__(self) -> str:
        return f"{self.repo}:{self.revision}" if self.revision else self.repo


def _check_repo(repo: str, text: str) -> str:
    if not _REPO.match(repo) or ".." in repo:
        raise BadRepoRef(
            f"{text!r} is not a Hugging Face repo: write OWNER/NAME, OWNER/NAME:BRANCH "
            "or https://huggingface.co/OWNER/NAME/tree/BRANCH"
        )
    return repo


def _parse_url(text: str) -> RepoRef:
    url = urlparse(text if "://" in text else f"https://{text}")
    parts = [unquote(p) for p in url.path.split("/") if p]
    if parts and parts[0] in ("models",):
        parts = parts[1:]
    if len(parts) < 2:
        raise BadRepoRef(f"{text!r} does not name a repo: expected https://huggingface.co/OWNER/NAME")
    repo = _check_repo("/".join(parts[:2]), text)
    rest = parts[2:]
    if not rest:
        return RepoRef(repo)
    if rest[0] == "tree" and len(rest) >= 2:
        return RepoRef(repo, rest[1])
    if rest[0] in ("blob", "resolve") and len(rest) >= 3:
        return RepoRef(repo, rest[1], "/".join(rest[2:]))
    raise BadRepoRef(f"{text!r} is not a repo, branch or file URL on the Hub")


def parse_repo_ref(text: str) -> RepoRef:
    """``owner/name``, ``owner/name:branch``, ``https://huggingface.co/owner/name/tree/branch``.

    A ``/blob/`` or ``/resolve/`` URL also names one file (``path``).
    """
    text = text.strip()
    if not text:
        raise BadRepoRef("no repo given: write OWNER/NAME or OWNER/NAME:BRANCH")
    host = urlparse(text if "://" in text else f"https://{text}").hostname or ""
    if "://" in text or host in _HUB_HOSTS:
        return _parse_url(text)
    repo, sep, branch = text.partition(":")
    if sep and not branch:
        raise BadRepoRef(f"{text!r} has an empty branch after ':'")
    return RepoRef(_check_repo(repo, text), branch or None)
