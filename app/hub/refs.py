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
# What llama.cpp's -hf and Ollama accept after ':' for a GGUF repo: a quant, not a branch.
_QUANT = re.compile(
    r"^(?:IQ[1-4]_(?:XXS|XS|NL|S|M)|Q[2-8]_K(?:_(?:XL|S|M|L))?|Q[4-8]_[01]|TQ[12]_0|MXFP4|BF16|F16|F32)$",
    re.IGNORECASE,
)


class BadRepoRef(HearthError):
    """The text is not a repo, ``repo:branch`` or Hub URL."""


@dataclass(frozen=True)
class RepoRef:
    """A repository at a branch (``revision`` None means the default branch), maybe one file in it."""

    repo: str
    revision: str | None = None
    path: str | None = None
    quant: str | None = None

    @property
    def branch(self) -> str:
        return self.revision or DEFAULT_BRANCH

    @property
    def includes(self) -> tuple[str, ...]:
        """File globs for ``REPO:QUANT`` (that quant's file, its shards or split parts), else none."""
        if not self.quant:
            return ()
        names = dict.fromkeys((self.quant.upper(), self.quant.lower()))
        return tuple(g for q in names for g in (f"*{q}.gguf", f"*{q}-*-of-*.gguf", f"*{q}.gguf-split-*"))

    def __str__(self) -> str:
        tag = self.revision or self.quant
        return f"{self.repo}:{tag}" if tag else self.repo


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
    """``owner/name``, ``owner/name:branch``, ``owner/name:QUANT``, ``https://huggingface.co/owner/name/tree/branch``.

    A quant name after ':' (``Q4_K_M``, ``IQ4_XS``, ``F16``) is taken as llama.cpp's ``-hf`` and Ollama
    take it: that quant's file on the default branch (``includes`` holds its globs).

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
    if branch and _QUANT.match(branch):  # owner/X-GGUF:Q4_K_M: that quant's file on the main branch
        return RepoRef(_check_repo(repo, text), None, quant=branch.upper())
    return RepoRef(_check_repo(repo, text), branch or None)
