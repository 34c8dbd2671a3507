"""The loopback Hub turned hostile: raw listings, lying ranges, trickled bodies and headers.

:class:`HostileHub` is a :class:`tests.hub.hub_server.HubServer` whose handler first looks at its
own rules and otherwise answers as the honest Hub does, so the shared server stays untouched.
Rules: ``raw_trees[(repo, branch)]`` is served as that branch's tree listing (any JSON, hostile
names and types included); ``range_shift`` makes every ranged GET answer 206 with a
``Content-Range`` (and bytes) starting ``shift`` bytes off, or ``range_total`` with a wrong total;
``trickle_body`` sends bodies one byte every ``interval`` seconds, ``trickle_head`` does the same
to the whole reply of a HEAD.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from tests.hub.hub_server import HubServer, _Handler

_RESOLVE = re.compile(r"^/(?P<repo>.+?)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_TREE = re.compile(r"^/api/models/(?P<repo>.+?)/tree/(?P<rev>[^/]+)")


@dataclass
class Lie:
    """One hostile behaviour for files matching ``path`` (exact name, or ``*``)."""

    kind: str  # range_shift | range_total | range_length | trickle_body | trickle_head
    path: str = "*"
    shift: int = 0
    interval: float = 1.0

    def hits(self, path: str) -> bool:
        return self.path in ("*", path)


class HostileHub(HubServer):
    def __init__(self) -> None:
        super().__init__()
        self.RequestHandlerClass = _HostileHandler
        self.raw_trees: dict[tuple[str, str], Any] = {}
        self.lies: list[Lie] = []

    def lie(self, lie: Lie) -> Lie:
        self.lies.append(lie)
        return lie


class _HostileHandler(_Handler):
    server: HostileHub

    def _route(self) -> None:
        url = urlparse(self.path)
        try:
            if self._hostile(url.path):
                return
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        super()._route()

    def _hostile(self, path: str) -> bool:
        if (match := _TREE.match(path)) and self.command == "GET":
            repo = self.server.repos.get(match["repo"])
            branch = repo.resolve_revision(unquote(match["rev"])) if repo else None
            raw = self.server.raw_trees.get((match["repo"], branch or ""))
            if raw is not None:
                body = json.dumps(raw).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return True
            return False
        match = _RESOLVE.match(path)
        if not match:
            return False
        name = unquote(match["path"])
        lie = next((x for x in self.server.lies if x.hits(name)), None)
        repo = self.server.repos.get(match["repo"])
        if lie is None or repo is None:
            return False
        branch = repo.resolve_revision(unquote(match["rev"]))
        blob = repo.branches.get(branch or "", {}).get(name)
        if blob is None:
            return False
        if lie.kind == "trickle_head" and self.command == "HEAD":
            self._trickle(self._head_bytes(repo.commits[branch or ""], blob), lie.interval)
            return True
        if self.command != "GET":
            return False
        if lie.kind == "trickle_body":
            head = self._head_bytes(repo.commits[branch or ""], blob, status="200 OK")
            self.wfile.write(head)
            self.wfile.flush()
            self._trickle(blob.read(0, blob.size), lie.interval)
            return True
        header = self.headers.get("Range") or ""
        asked = re.match(r"bytes=(\d+)-", header)
        if not asked:
            return False
        start = int(asked[1])
        size = blob.size
        sent_from = min(max(start + lie.shift, 0), size - 1) if lie.kind == "range_shift" else start
        total = size + 7 if lie.kind == "range_total" else size
        length = size - sent_from + (5 if lie.kind == "range_length" else 0)
        body = blob.read(sent_from, size - sent_from)
        self.send_response(206)
        self.send_header("ETag", f'"{blob.git_oid}"')
        self.send_header("Content-Range", f"bytes {sent_from}-{size - 1}/{total}")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True
        return True

    def _head_bytes(self, commit: str, blob: Any, status: str = "200 OK") -> bytes:
        lines = [f"HTTP/1.1 {status}", f"X-Repo-Commit: {commit}", f'ETag: "{blob.git_oid}"',
                 "Accept-Ranges: bytes", f"Content-Length: {blob.size}", "Content-Type: application/octet-stream"]
        if blob.lfs:
            lines += [f'X-Linked-Etag: "{blob.sha256}"', f"X-Linked-Size: {blob.size}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _trickle(self, data: bytes, interval: float) -> None:
        """One byte every ``interval`` s until done, the client leaves, or the server stops."""
        self.close_connection = True
        for byte in data:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            if self.server.release.wait(interval):
                break
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def running_hostile_hub(monkeypatch: Any) -> Any:
    """A started :class:`HostileHub` (no repos yet); HF_ENDPOINT points at it."""
    server = HostileHub().start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server
    server.stop()


def tree_entry(path: Any, data: bytes = b"x", /, *, lfs: bool = False, **override: Any) -> dict[str, Any]:
    """A tree listing entry as the Hub sends it, for ``data``; ``override`` replaces any field."""
    import hashlib

    entry: dict[str, Any] = {"type": "file", "path": path, "size": len(data),
                             "oid": hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()}
    if lfs:
        entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    entry.update(override)
    return entry


def tally(label: str, tried: int, handled: int) -> None:
    """Print a generator's figures (``pytest -s`` shows them) and fail unless every case was handled."""
    print(f"\n[tally] {label}: {tried} cases tried, {handled} handled")
    assert handled == tried, f"{label}: {tried - handled} of {tried} cases not handled"
