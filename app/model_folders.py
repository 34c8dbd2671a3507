"""Models used where they already are: other apps' folders (LM Studio, Jan, GPT4All, any folder) and
single ``.gguf`` files the user chose to "use in place" instead of copying into Hearth's own folder.

The list lives in ``CONFIG/model_folders.json`` (versioned); nothing in those folders is moved,
copied or written. A folder or file that disappears (an unplugged disk) is kept in the list and simply
contributes no models until it is back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import HearthError
from app.paths import app_dirs, set_aside

FILE_NAME = "model_folders.json"
VERSION = 1
GGUF_MAGIC = b"GGUF"


class ModelFolderError(HearthError):
    """A folder or file cannot be registered; the message says why and what to do."""


@dataclass
class ModelFolders:
    """Registered folders (searched for ``*.gguf``) and single files used in place."""

    folders: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def _store(config: Path | None) -> Path:
    return (config or app_dirs().config) / FILE_NAME


def load(config: Path | None = None) -> ModelFolders:
    """The registered folders and files (empty when none, or when the file is unreadable; a damaged one is
    moved aside as ``model_folders.json.damaged-...``)."""
    store = _store(config)
    try:
        data = json.loads(store.read_text(encoding="utf-8"))
    except ValueError:  # damaged: kept aside, so registering a folder now does not erase the old list
        set_aside(store)
        return ModelFolders()
    except OSError:
        return ModelFolders()
    if not isinstance(data, dict):
        return ModelFolders()

    def paths(key: str) -> list[Path]:
        items = data.get(key)
        return [Path(p) for p in items if isinstance(p, str) and p] if isinstance(items, list) else []

    return ModelFolders(paths("folders"), paths("files"))


def save(folders: ModelFolders, config: Path | None = None) -> None:
    path = _store(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"version": VERSION, "folders": [str(p) for p in folders.folders],
                               "files": [str(p) for p in folders.files]}, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def is_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def add_folder(folder: Path, config: Path | None = None) -> list[Path]:
    """Register ``folder``; returns the GGUF models found in it now."""
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise ModelFolderError(f"{folder} is not a folder: choose the folder that holds your .gguf files")
    current = load(config)
    if folder not in current.folders:
        current.folders.append(folder)
        save(current, config)
    return ggufs_in(folder)


def add_file(path: Path, config: Path | None = None) -> Path:
    """Use one ``.gguf`` file where it is (no copy); returns its absolute path."""
    path = path.expanduser().resolve()
    if not path.is_file():
        raise ModelFolderError(f"{path} does not exist")
    if not is_gguf(path):
        raise ModelFolderError(f"{path.name} is not a GGUF model file (llama.cpp loads .gguf files only)")
    current = load(config)
    if path not in current.files:
        current.files.append(path)
        save(current, config)
    return path


def remove(path: Path, config: Path | None = None) -> None:
    """Forget a folder or file (nothing on disk is touched)."""
    path = path.expanduser().resolve()
    current = load(config)
    current.folders = [p for p in current.folders if p != path]
    current.files = [p for p in current.files if p != path]
    save(current, config)


def ggufs_in(folder: Path) -> list[Path]:
    """Complete GGUF files under ``folder`` (any depth), skipping partial downloads and unreadable ones."""
    found = []
    for root, dirs, names in os.walk(folder, onerror=lambda _e: None):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if name.lower().endswith(".gguf"):
                path = Path(root) / name
                if is_gguf(path):
                    found.append(path)
    return sorted(found)


def registered_models(config: Path | None = None) -> list[Path]:
    """Every GGUF from the registered folders and files that is there now, without duplicates."""
    current = load(config)
    seen: dict[Path, None] = {}
    for folder in current.folders:
        if folder.is_dir():
            for path in ggufs_in(folder):
                seen.setdefault(path, None)
    for path in current.files:
        if path.is_file():
            seen.setdefault(path, None)
    return list(seen)


def suggested_folders(home: Path | None = None) -> list[Path]:
    """Other apps' model folders that exist on this machine (LM Studio, Jan, GPT4All, the HF cache)."""
    home = home or Path.home()
    candidates = [
        home / ".lmstudio" / "models",
        home / ".cache" / "lm-studio" / "models",
        home / "jan" / "models",
        home / ".local" / "share" / "Jan" / "data" / "models",
        home / "Library" / "Application Support" / "Jan" / "data" / "models",
        home / ".local" / "share" / "nomic.ai" / "GPT4All",
        home / "Library" / "Application Support" / "nomic.ai" / "GPT4All",
        home / "AppData" / "Local" / "nomic.ai" / "GPT4All",
    ]
    registered = set(load().folders)
    return [p for p in candidates if p.is_dir() and p.resolve() not in registered]
