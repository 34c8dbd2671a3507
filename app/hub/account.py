"""Signing in to Hugging Face: who the token belongs to, and storing it where ``hf auth login`` does.

The token is checked with the Hub's ``whoami`` at HF_ENDPOINT (read now, so a mirror set after start
counts), then saved with huggingface_hub's own login storage (``HF_HOME/token`` and the stored-tokens
file), so the ``hf`` command, transformers and Hearth all use the same one. ``HF_TOKEN`` in the
environment still wins over a stored token, as everywhere in huggingface_hub.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.hub import session
from app.hub.errors import HubError, translate


class InvalidToken(HubError):
    """The Hub did not accept the token (mistyped, revoked or expired)."""


@dataclass(frozen=True)
class Account:
    """Who a token belongs to."""

    name: str
    fullname: str = ""
    token_name: str = ""
    role: str = ""
    from_environment: bool = False

    @property
    def label(self) -> str:
        """``Signed in as alice (Alice Liddell)``."""
        who = f"{self.name} ({self.fullname})" if self.fullname and self.fullname != self.name else self.name
        return f"Signed in to Hugging Face as {who}" + (" · token from HF_TOKEN" if self.from_environment else "")


def tokens_page() -> str:
    """Where the user creates an access token (on the endpoint in use)."""
    return f"{session.endpoint()}/settings/tokens"


def current_token() -> str | None:
    """The token downloads send: HF_TOKEN, else the one ``hf auth login`` (or Hearth) stored."""
    from huggingface_hub import get_token

    return get_token()


def token_from_environment() -> bool:
    return bool(os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"))


def _account(info: dict[str, Any], from_environment: bool = False) -> Account:
    access = (info.get("auth") or {}).get("accessToken") or {}
    return Account(name=str(info.get("name") or "?"), fullname=str(info.get("fullname") or ""),
                   token_name=str(access.get("displayName") or ""), role=str(access.get("role") or ""),
                   from_environment=from_environment)


def whoami(token: str) -> Account:
    """Ask the Hub who ``token`` belongs to; InvalidToken or another HubError when it cannot say."""
    from huggingface_hub.errors import HfHubHTTPError

    token = token.strip()
    if not token:
        raise InvalidToken("paste an access token first (it starts with hf_)")
    if token.startswith("api_org"):
        raise InvalidToken("that is an organisation token: use a personal access token")
    try:
        return _account(session.api().whoami(token=token))
    except HfHubHTTPError as exc:
        if exc.response is not None and exc.response.status_code == 401:
            raise InvalidToken(
                f"the Hub did not accept this token (it may be mistyped, revoked or expired): "
                f"create a new one at {tokens_page()}"
            ) from None
        raise translate(exc, repo="your account", endpoint=session.endpoint()) from None
    except Exception as exc:
        raise translate(exc, repo="your account", endpoint=session.endpoint()) from None


def signed_in() -> Account | None:
    """The account of the token in use now, or None when there is none (network errors raise HubError)."""
    token = current_token()
    if not token:
        return None
    account = whoami(token)
    return Account(account.name, account.fullname, account.token_name, account.role, token_from_environment())


def store_token(token: str, token_name: str) -> Path:
    """Save ``token`` as the active one exactly as ``hf auth login`` does; returns the token file."""
    from huggingface_hub import constants

    try:
        from huggingface_hub._login import _set_active_token
        from huggingface_hub.utils._auth import _save_token
    except ImportError:  # a huggingface_hub that moved its helpers: write the token file it reads
        path = Path(constants.HF_TOKEN_PATH)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(token, encoding="utf-8")
        return path
    _save_token(token=token, token_name=token_name)
    _set_active_token(token_name=token_name, add_to_git_credential=False)
    return Path(constants.HF_TOKEN_PATH)


def sign_in(token: str) -> Account:
    """Check ``token`` with the Hub, then store it as the active token; returns the account."""
    token = token.strip()
    account = whoami(token)
    try:
        store_token(token, account.token_name or f"hearth-{account.name}")
    except OSError as exc:
        raise HubError(f"the token is valid but could not be saved: {exc.strerror or exc}") from None
    return account


def sign_out() -> None:
    """Forget the active stored token (the stored-tokens list and HF_TOKEN are left alone)."""
    from huggingface_hub import constants

    Path(constants.HF_TOKEN_PATH).unlink(missing_ok=True)


def needs_token(message: str) -> bool:
    """Whether a download or lookup failed for want of a (valid) token: gated or private repos, 401/403."""
    text = message.lower()
    return "access token" in text or "gated" in text or "refused access" in text
