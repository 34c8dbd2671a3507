"""A Hugging Face Hub on loopback, speaking the HTTP API as huggingface_hub 2.x uses it, with faults.

Serves ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` (``Range``, ``X-Repo-Commit``, ``ETag``,
``X-Linked-Etag``, ``X-Linked-Size``, ``X-Error-Code``) and ``/api/models/{repo}/refs``,
``/revision/{rev}``, ``/tree/{rev}``, ``/paths-info/{rev}``. Faults (:class:`Fault`) drop the
connection mid-file, stall, corrupt bytes, answer an error status, or limit bandwidth; they hit the
API routes too (their path is ``api/refs``, ``api/revision``, ``api/tree`` or ``api/paths-info``).
The server counts the body bytes it sends per file so tests can tell what was fetched twice.

Run it alone for the benchmark or by hand: ``python -m tests.hub.hub_server FILE...``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import socket
import ssl
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

LFS_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pt")
CHUNK = 256 * 1024


@dataclass
class Blob:
    """A file's content: bytes in memory or a file on disk (for big benchmark files)."""

    data: bytes | None = None
    path: Path | None = None
    lfs: bool = False
    _sha256: str | None = None
    _sha1: str | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.path.stat().st_size  # type: ignore[union-attr]

    def read(self, start: int, length: int) -> bytes:
        if self.data is not None:
            return self.data[start:start + length]
        with self.path.open("rb") as f:  # type: ignore[union-attr]
            f.seek(start)
            return f.read(length)

    def _digest(self, h: Any) -> str:
        pos = 0
        while pos < self.size:
            block = self.read(pos, 8 << 20)
            h.update(block)
            pos += len(block)
        return str(h.hexdigest())

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = self._digest(hashlib.sha256())
        return self._sha256

    @property
    def git_oid(self) -> str:
        if self._sha1 is None:
            h = hashlib.sha1()
            h.update(f"blob {self.size}\0".encode())
            self._sha1 = self._digest(h)
        return self._sha1


@dataclass
class Repo:
    repo_id: str
    branches: dict[str, dict[str, Blob]]
    commits: dict[str, str]
    gated: bool = False
    private: bool = False
    tokens: set[str] = field(default_factory=set)

    def resolve_revision(self, rev: str) -> str | None:
        """Branch name for a branch or one of its commits."""
        if rev in self.branches:
            return rev
        for branch, commit in self.commits.items():
            if rev == commit:
                return branch
        return None


@dataclass
class Fault:
    """Something to go wrong on matching requests.

    kind: ``drop`` (close after ``after`` body bytes), ``stall`` (send ``after`` bytes, then hang
    ``seconds``), ``corrupt`` (flip the byte at offset ``after``), ``status`` (answer ``status``
    with ``error_code``), ``bandwidth`` (``rate`` bytes/s). ``times`` is how many requests it hits
    (None: all). ``path`` is a glob on the file path, or ``api/<route>`` for the API (where
    ``stall`` hangs before answering and ``drop`` closes without answering; on ``api/models``, the
    search, ``stall`` answers once it has hung); ``method`` limits it to GET, HEAD or POST.
    """

    kind: str
    path: str = "*"
    after: int = 0
    seconds: float = 30.0
    status: int = 500
    error_code: str | None = None
    rate: float = 0.0
    times: int | None = 1
    method: str | None = "GET"
    hits: int = 0

    def applies(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return (self.method is None or self.method == method) and fnmatch.fnmatchcase(path, self.path)


def _commit_for(repo_id: str, branch: str) -> str:
    return hashlib.sha1(f"{repo_id}@{branch}".encode()).hexdigest()


class HubServer(ThreadingHTTPServer):
    """The fake Hub. ``url`` is its HF_ENDPOINT; ``bytes_served[path]`` counts body bytes sent."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.repos: dict[str, Repo] = {}
        self.search_info: dict[str, dict[str, Any]] = {}  # repo -> downloads, likes, tags... for /api/models
        self.faults: list[Fault] = []
        self.bytes_served: dict[str, int] = defaultdict(int)
        self.requests: list[tuple[str, str, str | None]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.sending = 0  # bodies being sent right now
        self.scheme = "http"
        self.users: dict[str, str] = {}  # token -> user name, for /api/whoami-v2
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    def use_tls(self, certfile: Path, keyfile: Path) -> HubServer:
        """Serve HTTPS with this certificate and key (call before :meth:`start`)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.scheme = "https"
        return self

    # -- content -------------------------------------------------------------
    def add_repo(self, repo_id: str, branches: dict[str, dict[str, bytes | Path]], *,
                 gated: bool = False, private: bool = False, tokens: set[str] | None = None) -> Repo:
        blobs = {
            branch: {
                name: Blob(data=c if isinstance(c, bytes) else None, path=c if isinstance(c, Path) else None,
                           lfs=name.endswith(LFS_SUFFIXES) or "-split-" in name)
                for name, c in files.items()
            }
            for branch, files in branches.items()
        }
        repo = Repo(repo_id, blobs, {b: _commit_for(repo_id, b) for b in branches}, gated, private, tokens or set())
        self.repos[repo_id] = repo
        return repo

    def inject(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, method: str, path: str, kinds: tuple[str, ...]) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.kind in kinds and fault.applies(method, path):
                    fault.hits += 1
                    return fault
        return None

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no body is being sent (a killed client's connection has been noticed)."""
        deadline = time.monotonic() + timeout
        while self.sending and time.monotonic() < deadline:
            time.sleep(0.01)

    def reset_counts(self) -> None:
        with self.lock:
            self.bytes_served.clear()
            self.requests.clear()

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> HubServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


_RESOLVE = re.compile(r"^/(?P<repo>.+?)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_API = re.compile(
    r"^/api/models/(?P<repo>.+?)/(?P<op>refs|revision|tree|paths-info)(?:/(?P<rev>[^/]+)(?:/(?P<sub>.*))?)?$"
)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HubServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- helpers -------------------------------------------------------------
    def _error(self, status: int, code: str | None, message: str, extra: dict[str, str] | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload: Any, status: int = 200) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _repo(self, repo_id: str) -> Repo | None:
        """The repo if the caller may see it; otherwise the error has been sent."""
        repo = self.server.repos.get(repo_id)
        token = (self.headers.get("authorization") or "").removeprefix("Bearer ").strip()
        if repo is None or (repo.private and token not in repo.tokens):
            self._error(401 if not token else 404, "RepoNotFound", "Repository not found")
            return None
        if repo.gated and token not in repo.tokens:
            self._error(401 if not token else 403, "GatedRepo", "Access to this model is restricted.")
            return None
        return repo

    def _branch(self, repo: Repo, rev: str) -> str | None:
        branch = repo.resolve_revision(unquote(rev))
        if branch is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {unquote(rev)}")
        return branch

    # -- routes --------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        url = urlparse(self.path)
        with self.server.lock:
            self.server.requests.append((self.command, url.path, self.headers.get("Range")))
        try:
            if url.path == "/_stats":  # for the benchmark, which runs the server in another process
                self._json({"bytes_served": dict(self.server.bytes_served)})
                if "reset" in url.query:
                    self.server.reset_counts()
            elif url.path == "/api/models":
                if fault := self.server.take_fault(self.command, "api/models", ("stall",)):
                    self.server.release.wait(fault.seconds)  # a slow search: it answers, late
                self._json(_list_models(self.server, url.query))
            elif url.path == "/api/whoami-v2":
                self._whoami()
            elif match := _API.match(url.path):
                self._api(match["repo"], match["op"], match["rev"], match["sub"], url.query)
            elif match := _RESOLVE.match(url.path):
                self._resolve(match["repo"], match["rev"], unquote(match["path"]))
            else:
                self._error(404, None, "Not found")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _whoami(self) -> None:
        """Who a token belongs to (``server.users``), as the Hub answers it; 401 for any other token."""
        token = (self.headers.get("authorization") or "").removeprefix("Bearer ").strip()
        name = self.server.users.get(token)
        if name is None:
            self._error(401, None, "Invalid credentials in Authorization header")
            return
        self._json({"type": "user", "id": hashlib.sha1(name.encode()).hexdigest()[:24], "name": name,
                    "fullname": name.title(), "orgs": [],
                    "auth": {"type": "access_token", "accessToken": {"displayName": f"{name}-laptop", "role": "read"}}})

    def _api(self, repo_id: str, op: str, rev: str | None, sub: str | None, query: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode()) if length else {}
        if fault := self.server.take_fault(self.command, f"api/{op}", ("status", "stall", "drop")):
            if fault.kind == "status":
                self._error(fault.status, fault.error_code, f"injected {fault.status}")
                return
            if fault.kind == "stall":
                self.server.release.wait(fault.seconds)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        repo = self._repo(repo_id)
        if repo is None:
            return
        if op == "refs":
            self._json({
                "branches": [
                    {"name": b, "ref": f"refs/heads/{b}", "targetCommit": repo.commits[b]} for b in repo.branches
                ],
                "converts": [], "tags": [], "pullRequests": [],
            })
            return
        branch = self._branch(repo, rev or "main")
        if branch is None:
            return
        files = repo.branches[branch]
        if op == "revision":
            self._json({
                "_id": repo_id, "id": repo_id, "modelId": repo_id, "sha": repo.commits[branch],
                "private": repo.private, "gated": "auto" if repo.gated else False, "disabled": False,
                "downloads": 0, "likes": 0, "tags": [], "lastModified": "2024-01-01T00:00:00.000Z",
                "siblings": [{"rfilename": n} for n in files],
            })
        elif op == "tree":
            prefix = unquote(sub or "").strip("/")
            self._json(_tree(files, prefix, recursive="recursive=true" in query.lower() or "recursive=1" in query))
        else:  # paths-info
            wanted = form.get("paths", [])
            self._json([e for e in _tree(files, "", recursive=True) if e["path"] in wanted])

    def _resolve(self, repo_id: str, rev: str, path: str) -> None:
        server = self.server
        if fault := server.take_fault(self.command, path, ("status",)):
            self._error(fault.status, fault.error_code, f"injected {fault.status}")
            return
        repo = self._repo(repo_id)
        if repo is None:
            return
        branch = self._branch(repo, rev)
        if branch is None:
            return
        blob = repo.branches[branch].get(path)
        commit = {"X-Repo-Commit": repo.commits[branch]}
        if blob is None:
            self._error(404, "EntryNotFound", f"{path} does not exist on {branch}", commit)
            return
        size, start, end = blob.size, 0, blob.size - 1
        status = 200
        if (header := self.headers.get("Range")) and self.command == "GET":
            match = _RANGE.match(header.strip())
            if match and match[1]:
                start, end = int(match[1]), min(int(match[2]) if match[2] else size - 1, size - 1)
            elif match and match[2]:
                start = max(size - int(match[2]), 0)
            if start >= size:
                self._error(416, None, "Range Not Satisfiable", {"Content-Range": f"bytes */{size}"})
                return
            status = 206
        self.send_response(status)
        self.send_header("X-Repo-Commit", repo.commits[branch])
        self.send_header("ETag", f'"{blob.git_oid}"')
        if blob.lfs:
            self.send_header("X-Linked-Etag", f'"{blob.sha256}"')
            self.send_header("X-Linked-Size", str(size))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command == "GET":
            with server.lock:
                server.sending += 1
            try:
                self._send_body(blob, path, start, end + 1)
            finally:
                with server.lock:
                    server.sending -= 1

    def _send_body(self, blob: Blob, path: str, start: int, stop: int) -> None:
        server = self.server
        fault = server.take_fault("GET", path, ("drop", "stall", "corrupt"))
        limit = server.take_fault("GET", path, ("bandwidth",))
        if fault is None and limit is None and blob.path is not None and server.scheme == "http":
            self._sendfile(blob, path, start, stop)
            return
        pos, began = start, time.monotonic()
        sent = 0
        while pos < stop:
            size = min(CHUNK if limit is None else max(int(limit.rate / 100), 1024), stop - pos)
            if fault and fault.kind in ("drop", "stall") and pos - start + size > fault.after:
                size = max(start + fault.after - pos, 0)
            data = bytearray(blob.read(pos, size))
            if fault and fault.kind == "corrupt" and pos <= fault.after < pos + size:
                data[fault.after - pos] ^= 0xFF
            if data:
                self.wfile.write(data)
                with server.lock:
                    server.bytes_served[path] += len(data)
                pos += len(data)
                sent += len(data)
            if fault and fault.kind in ("drop", "stall") and pos - start >= fault.after:
                if fault.kind == "stall":
                    server.release.wait(fault.seconds)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if limit is not None:
                ahead = sent / limit.rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)

    def _sendfile(self, blob: Blob, path: str, start: int, stop: int) -> None:
        assert blob.path is not None
        with blob.path.open("rb") as f:
            pos = start
            while pos < stop:
                sent = os.sendfile(self.connection.fileno(), f.fileno(), pos, min(stop - pos, 64 << 20))
                if sent <= 0:
                    break
                pos += sent
                with self.server.lock:
                    self.server.bytes_served[path] += sent


def _tree(files: dict[str, Blob], prefix: str, recursive: bool) -> list[dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for name, blob in sorted(files.items()):
        if prefix and not name.startswith(prefix + "/"):
            continue
        rest = name[len(prefix) + 1:] if prefix else name
        parts = rest.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(([prefix] if prefix else []) + parts[:depth])
            if recursive or depth == 1:
                entries.setdefault(folder, {"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(),
                                            "size": 0, "path": folder})
        if not recursive and len(parts) > 1:
            continue
        entry: dict[str, Any] = {"type": "file", "oid": blob.git_oid, "size": blob.size, "path": name}
        if blob.lfs:
            entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": 134}
        entries[name] = entry
    return list(entries.values())


def _list_models(server: HubServer, query: str) -> list[dict[str, Any]]:
    """``GET /api/models?search=&filter=&sort=&limit=``: public repos whose id holds every search word."""
    params = parse_qs(query)
    words = " ".join(params.get("search", [])).lower().split()
    wanted_tags = {t.lower() for f in params.get("filter", []) for t in f.split(",") if t}
    limit = int(params.get("limit", ["1000"])[0])
    found = []
    for repo_id, repo in server.repos.items():
        if repo.private or not all(w in repo_id.lower() for w in words):
            continue
        info = server.search_info.get(repo_id, {})
        names = {n for files in repo.branches.values() for n in files}
        tags = list(info.get("tags", []))
        tags += [t for t, hit in (("gguf", any(n.endswith(".gguf") for n in names)),
                                  ("gptq", "quantize_config.json" in names)) if hit and t not in tags]
        if wanted_tags and not wanted_tags <= {t.lower() for t in tags}:
            continue
        found.append({
            "_id": repo_id, "id": repo_id, "modelId": repo_id, "private": False,
            "downloads": info.get("downloads", 0), "likes": info.get("likes", 0),
            "lastModified": info.get("lastModified", "2024-01-01T00:00:00.000Z"),
            "tags": tags, "pipeline_tag": info.get("pipeline_tag", "text-generation"),
            "gated": "auto" if repo.gated else False,
        })
    found.sort(key=lambda m: -m["downloads"])
    return found[:limit]


def main() -> None:
    import sys

    server = HubServer(port=int(os.environ.get("PORT", "0")))
    files = {Path(a).name: Path(a) for a in sys.argv[1:]}
    server.add_repo("local/files", {"main": dict(files)})
    print(f"HF_ENDPOINT={server.url}  repo: local/files", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
