"""A repo's branches and one branch's files (size, sha256), through huggingface_hub's HfApi."""

from __future__ import annotations

import fnmatch
import queue
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import httpx2
from huggingface_hub.hf_api import RepoFile

from app.hub import limits, session
from app.hub.entries import HubFile, Refused, shown, sort_out
from app.hub.errors import EntryNotFound, HubError, HubTimeout, translate

__all__ = ["Branch", "HubFile", "RepoListing", "list_branches", "list_files", "within_deadline"]

# How long a listing (branches, or one branch's files) may take before the user is told the Hub is not
# answering. huggingface_hub retries timeouts itself and passes no timeout when listing a tree, so the
# deadline is kept here, around the whole call.
LISTING_TIMEOUT_S = 30.0

T = TypeVar("T")


@dataclass(frozen=True)
class Branch:
    name: str
    commit: str


@dataclass(frozen=True)
class RepoListing:
    """The files of ``repo`` at ``revision``, pinned to ``commit`` so a moving branch cannot mix files."""

    repo: str
    revision: str
    commit: str
    files: tuple[HubFile, ...]
    refused: tuple[Refused, ...] = ()

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path: str) -> HubFile:
        for f in self.files:
            if f.path == path:
                return f
        for r in self.refused:
            if r.path == path:
                raise HubError(r.message(f"{self.repo}:{self.revision}"))
        raise EntryNotFound(f"file {path!r} was not found in {self.repo}:{self.revision}")

    def select(self, includes: Sequence[str] = ()) -> list[HubFile]:
        """Files matching any glob (on the path or the bare name); all files when none given."""
        if not includes:
            return [f for f in self.files if f.name != ".gitattributes"]
        chosen = [
            f for f in self.files
            if any(fnmatch.fnmatchcase(f.path, g) or fnmatch.fnmatchcase(f.name, g) for g in includes)
        ]
        if not chosen:
            raise EntryNotFound(
                f"no file in {self.repo}:{self.revision} matches {' '.join(includes)}; "
                f"run `hearth download --list {self.repo}:{self.revision}` to see its files"
            )
        return chosen

    def refused_among(self, names: Sequence[str] = (), includes: Sequence[str] = ()) -> Refused | None:
        """The first refused entry a request for ``names`` / ``includes`` (everything when both are
        empty) would have wanted, if any."""
        for r in self.refused:
            if not names and not includes:
                return r
            if r.path is None:
                continue
            bare = r.path.rsplit("/", 1)[-1]
            if r.path in names or any(fnmatch.fnmatchcase(r.path, g) or fnmatch.fnmatchcase(bare, g)
                                      for g in includes):
                return r
        return None


def within_deadline(call: Callable[[], T], seconds: float, what: str) -> T:
    """``call()``'s result, or HubTimeout when it takes longer than ``seconds``.

    The call runs on a daemon thread; one that overruns is abandoned (the shared client's own
    timeouts end it later, see :func:`app.hub.session.client`) and its result is dropped.
    """
    outcome: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=1)

    def work() -> None:
        try:
            outcome.put((True, call()))
        except BaseException as exc:
            outcome.put((False, exc))

    threading.Thread(target=work, name="hub-listing", daemon=True).start()
    try:
        ok, value = outcome.get(timeout=seconds)
    except queue.Empty:
        ok, value = False, httpx2.ReadTimeout("deadline")
    if isinstance(value, httpx2.TimeoutException):
        raise HubTimeout(
            f"the Hub did not answer in {seconds:g} s while {what}: check your connection "
            "(or HF_ENDPOINT) and try again"
        ) from None
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]


def list_branches(repo: str) -> list[Branch]:
    """The repo's branches, ``main`` first, then by name."""
    try:
        refs = within_deadline(lambda: session.api().list_repo_refs(repo), listing_deadline(),
                               f"listing the branches of {repo}")
    except Exception as exc:
        raise translate(exc, repo=repo, endpoint=session.endpoint()) from None
    branches = [Branch(b.name, b.target_commit) for b in refs.branches
                if isinstance(b.name, str) and isinstance(b.target_commit, str)
                and 0 < len(b.name) <= 255 and b.name.isprintable()]
    return sorted(branches, key=lambda b: (b.name != "main", b.name.lower()))


def listing_deadline() -> float:
    """The total time one listing may take (``HEARTH_HUB_DEADLINE`` overrides it)."""
    return limits.hub_deadline(LISTING_TIMEOUT_S)


_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _fetch_listing(repo: str, revision: str) -> RepoListing:
    api = session.api()
    where = f"{repo}:{revision}"
    try:
        info = api.model_info(repo, revision=revision, timeout=listing_deadline())
        commit = info.sha or revision
        if not isinstance(commit, str) or not (_COMMIT.match(commit) or commit == revision):
            raise HubError(f"the Hub sent a malformed commit id {shown(commit, 20)} for {where}: try again later")
        entries = list(api.list_repo_tree(repo, revision=commit, recursive=True))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise HubError(
            f"the Hub sent a malformed file listing for {where} ({type(exc).__name__}): try again later"
        ) from None
    files, refused = sort_out(
        (e for e in entries if isinstance(e, RepoFile)),
        folders=(getattr(e, "path", None) for e in entries if not isinstance(e, RepoFile)),
    )
    return RepoListing(repo=repo, revision=revision, commit=commit, files=tuple(files), refused=tuple(refused))


def list_files(repo: str, revision: str = "main") -> RepoListing:
    """Every file of the branch with its size and checksum."""
    try:
        return within_deadline(lambda: _fetch_listing(repo, revision), listing_deadline(),
                               f"listing the files of {repo}:{revision}")
    except Exception as exc:
        raise translate(exc, repo=repo, revision=revision, endpoint=session.endpoint()) from None
