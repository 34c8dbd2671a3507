"""OpenAI-compatible endpoints the user added as model sources, kept in their settings (keys included, never shown)."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from app.errors import HearthError
from app.paths import app_dirs, set_aside

ENDPOINTS_FILE = "endpoints.json"


@dataclass(frozen=True)
class Endpoint:
    """A server speaking OpenAI's API: its name in the model picker, base URL and optional key."""

    name: str
    url: str
    api_key: str | None = field(default=None, repr=False)
    models: tuple[str, ...] = ()  # its /v1/models when last asked (the model picker lists them)

    @property
    def base_url(self) -> str:
        """The URL ending in /v1, as OpenAI clients want it (a bare host gets /v1 added)."""
        url = self.url.rstrip("/")
        return url if url.endswith("/v1") else f"{url}/v1"

    def __str__(self) -> str:
        return f"{self.name} ({self.base_url})"


def checked_url(url: str) -> str:
    """``url`` if it is an http(s) address; a clear error otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HearthError(f"{url!r} is not an endpoint address: expected http://HOST:PORT or https://HOST/v1")
    if parts.username or parts.password:
        raise HearthError("put the API key in its own field, not in the endpoint address")
    return url.strip()


def endpoint_for(url: str, api_key: str | None = None, name: str | None = None) -> Endpoint:
    """An endpoint from a URL typed on the command line; its name is the host unless given."""
    url = checked_url(url)
    return Endpoint(name or urlsplit(url).netloc, url, api_key or None)


class EndpointStore:
    """The endpoints in ``endpoints.json`` in the config folder (readable by the user only)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or app_dirs().config / ENDPOINTS_FILE

    def load(self) -> list[Endpoint]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except ValueError:  # damaged: no endpoints rather than no app, and the file kept aside for the user
            set_aside(self.path)
            return []
        except OSError:
            return []
        found = []
        for item in raw if isinstance(raw, list) else []:
            if isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("url"), str):
                key = item.get("api_key")
                models = item.get("models")
                found.append(Endpoint(item["name"], item["url"], key if isinstance(key, str) and key else None,
                                      tuple(str(m) for m in models) if isinstance(models, list) else ()))
        return found

    def save(self, endpoints: list[Endpoint]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump([{**asdict(e), "models": list(e.models)} for e in endpoints], out, indent=2)
        os.replace(temporary, self.path)
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)

    def add(self, endpoint: Endpoint) -> list[Endpoint]:
        """Add or replace (by name) an endpoint."""
        checked_url(endpoint.url)
        if not endpoint.name.strip():
            raise HearthError("give the endpoint a name")
        endpoints = [e for e in self.load() if e.name != endpoint.name] + [endpoint]
        self.save(endpoints)
        return endpoints

    def remove(self, name: str) -> list[Endpoint]:
        endpoints = [e for e in self.load() if e.name != name]
        self.save(endpoints)
        return endpoints

    def find(self, name_or_url: str) -> Endpoint | None:
        for endpoint in self.load():
            if name_or_url in (endpoint.name, endpoint.url, endpoint.base_url):
                return endpoint
        return None
