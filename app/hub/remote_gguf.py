"""A GGUF file's header read from the Hub without downloading it: Range requests for a growing prefix."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.engine.gguf_meta import GGUFError, GGUFMetadata, GGUFTruncatedError, read_gguf_metadata
from app.hub.errors import HubError
from app.hub.small_files import fetch_bytes

FIRST_REQUEST = 256 * 1024
MAX_HEADER = 64 << 20  # vocabularies of 250k tokens stay well under this


@dataclass(frozen=True)
class RemoteHeader:
    """The parsed header of ``repo:revision/path`` and how many bytes it took to read it."""

    repo: str
    revision: str
    path: str
    metadata: GGUFMetadata
    bytes_fetched: int


def _header_ends_inside(prefix_file: Path) -> bool:
    """Whether the whole header is in the prefix: parsing stops only at tensor data past its end."""
    try:
        read_gguf_metadata(prefix_file)
    except GGUFTruncatedError as exc:
        return "tensor" in str(exc) and "runs past the end" in str(exc)
    return True


def read_remote_header(repo: str, revision: str, path: str, size: int) -> RemoteHeader:
    """Fetch just enough of the file's start to parse its header with :mod:`app.engine.gguf_meta`.

    The prefix grows (256 KB, doubling) until the header and tensor table are complete; the
    parse then runs on a sparse file of the real size, so nothing past the header is fetched.
    """
    where = f"{repo}:{revision}/{path}"
    with tempfile.TemporaryDirectory(prefix="hearth-gguf-") as folder:
        local = Path(folder) / Path(path).name
        fetched = 0
        want = min(FIRST_REQUEST, size)
        with local.open("wb") as f:
            while True:
                data = fetch_bytes(repo, revision, path, start=fetched, length=want - fetched)
                if not data:
                    raise HubError(f"{where} ended after {fetched:,} bytes, before its GGUF header did")
                f.write(data)
                f.flush()
                fetched += len(data)
                if fetched < want:
                    continue
                try:
                    complete = fetched >= size or _header_ends_inside(local)
                except GGUFError as exc:
                    raise HubError(f"{where} is not a GGUF file llama.cpp can read: "
                                   f"{str(exc).split(': ', 1)[-1]}") from None
                if complete:
                    break
                if want >= min(size, MAX_HEADER):
                    raise HubError(f"the GGUF header of {where} is larger than {MAX_HEADER >> 20} MB; "
                                   "Hearth gave up reading it")
                want = min(want * 2, size, MAX_HEADER)
            try:
                f.truncate(size)  # sparse: the tensor data is never fetched nor written
            except OSError as exc:  # a file system without sparse files, or not enough room
                raise HubError(f"cannot lay out the header of {where} to read it: {exc.strerror or exc}") from None
        try:
            metadata = read_gguf_metadata(local)
        except GGUFError as exc:
            raise HubError(f"{where} is not a GGUF file llama.cpp can read: {str(exc).split(': ', 1)[-1]}") from None
    return RemoteHeader(repo, revision, path, metadata, fetched)
