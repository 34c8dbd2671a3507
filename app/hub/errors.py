"""Hub and download failures as HearthErrors whose messages say what happened and what to do."""

from __future__ import annotations

import errno

from app.errors import HearthError

TOKEN_HELP = (
    "sign in to Hugging Face with an access token (create one at https://huggingface.co/settings/tokens, "
    "then use Sign in on Hearth's Downloads page, or run `hearth login`, or set HF_TOKEN) and try again"
)


class HubError(HearthError):
    """A download or listing failed; the message is for the user."""


class RepoNotFound(HubError):
    """No such repository (or a private one without a token)."""


class RevisionNotFound(HubError):
    """The repository has no such branch, tag or commit."""


class EntryNotFound(HubError):
    """The branch has no such file."""


class AccessDenied(HubError):
    """401/403: a gated or private repository."""


class HubUnreachable(HubError):
    """No connection to the Hub (offline, DNS, refused, offline mode)."""


class HubProtocolError(HubError):
    """The server answered, but not with valid HTTP (a broken mirror, proxy or captive portal)."""


class HubTimeout(HubError):
    """The Hub stopped answering."""


class HubServerError(HubError):
    """The Hub answered 5xx or 429."""


class ChecksumMismatch(HubError):
    """The downloaded bytes are not the file the Hub describes; they were removed."""


class NotEnoughSpace(HubError):
    """The disk has too little room for what is about to be downloaded."""


class DiskFull(HubError):
    """The disk filled up while writing; nothing was marked finished."""


class DownloadStopped(Exception):
    """Raised inside a transfer when the user paused or cancelled it (``reason`` says which)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _where(repo: str, revision: str | None) -> str:
    return f"{repo}:{revision}" if revision else repo


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def translate(
    exc: BaseException, *, repo: str, revision: str | None = None, path: str | None = None,
    endpoint: str | None = None,
) -> HearthError:
    """Turn a huggingface_hub / httpx2 / OS exception into the HearthError the user should see."""
    # Imported here: huggingface_hub and httpx are slow to import and only needed once a transfer fails.
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, HearthError):
        return exc
    where = _where(repo, revision)
    if isinstance(exc, GatedRepoError):
        return AccessDenied(
            f"{repo} is a gated repository: accept its terms at https://huggingface.co/{repo}, "
            f"then {TOKEN_HELP}"
        )
    if isinstance(exc, RepositoryNotFoundError):
        return RepoNotFound(
            f"repository {repo!r} was not found on the Hub: check the name (owner/name); "
            f"if it is private, {TOKEN_HELP}"
        )
    if isinstance(exc, RevisionNotFoundError):
        return RevisionNotFound(
            f"branch {revision!r} was not found in {repo}: run `hearth download --list {repo}` "
            "to see its branches"
        )
    if isinstance(exc, RemoteEntryNotFoundError):
        return EntryNotFound(f"file {path!r} was not found in {where}")
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status in (401, 403):
            return AccessDenied(f"the Hub refused access to {where} (HTTP {status}): {TOKEN_HELP}")
        if status == 404:
            return EntryNotFound(f"{path or where} was not found on the Hub (HTTP 404)")
        if status == 429:
            return HubServerError(f"the Hub is rate-limiting downloads of {where}: wait a minute and retry")
        if status >= 500:
            return HubServerError(
                f"the Hub had a server error (HTTP {status}) for {path or where}: try again later; "
                "already downloaded bytes are kept"
            )
        return HubError(f"the Hub answered HTTP {status} for {path or where}")
    if isinstance(exc, OfflineModeIsEnabled):
        return HubUnreachable("cannot reach the Hugging Face Hub: offline mode is on (unset HF_HUB_OFFLINE)")
    if isinstance(exc, httpx2.TimeoutException):
        return HubTimeout(
            f"the Hub stopped answering while fetching {path or where}: check your connection and retry; "
            "already downloaded bytes are kept"
        )
    if isinstance(exc, httpx2.ProtocolError):
        host = endpoint or "the Hugging Face Hub"
        return HubProtocolError(
            f"{host} answered with something that is not valid HTTP ({printable(str(exc), 120)}) "
            f"while fetching {path or where}: "
            "a proxy, captive portal or mirror (HF_ENDPOINT) is likely in the way; already downloaded bytes are kept"
        )
    if isinstance(exc, (httpx2.TransportError, ConnectionError)):
        host = endpoint or "the Hugging Face Hub"
        return HubUnreachable(
            f"cannot reach {host}: check your internet connection (or HF_ENDPOINT); "
            "installed models keep working offline"
        )
    if is_disk_full(exc):
        return DiskFull(f"the disk is full while writing {path or where}: free some space and resume")
    if isinstance(exc, OSError):
        return HubError(f"could not write {path or where}: {printable(exc.strerror or str(exc))}")
    return HubError(f"{type(exc).__name__} while downloading {path or where}: {printable(str(exc))}")


def printable(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters with control, escape and bidi characters shown as escapes."""
    safe = "".join(
        ch if ch.isprintable() and ch not in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
        else ch.encode("unicode_escape", "backslashreplace").decode("ascii")
        for ch in text[:limit]
    )
    return safe[:limit] + ("…" if len(safe) > limit or len(text) > limit else "")
