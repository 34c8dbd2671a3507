"""Where Hearth keeps its files: platformdirs locations, or all under one HEARTH_HOME folder."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "Hearth"


@dataclass(frozen=True)
class AppDirs:
    """The user's config, data and cache folders (created on first use, not here)."""

    config: Path
    data: Path
    cache: Path

    @property
    def models(self) -> Path:
        """Downloaded and imported model files."""
        override = os.environ.get("HEARTH_MODELS_DIR")
        return Path(override).expanduser() if override else self.data / "models"

    @property
    def chats_db(self) -> Path:
        """The SQLite file that holds every conversation."""
        return self.data / "chats.sqlite3"

    @property
    def settings_file(self) -> Path:
        return self.config / "settings.json"


def app_dirs() -> AppDirs:
    """Return the folders in use: HEARTH_HOME (tests, portable installs) or platformdirs."""
    home = os.environ.get("HEARTH_HOME")
    if home:
        base = Path(home).expanduser()
        return AppDirs(config=base / "config", data=base / "data", cache=base / "cache")
    return AppDirs(
        config=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        data=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        cache=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
    )


def install_root() -> Path:
    """The folder holding models_catalog.json and resources/: the bundle or the source tree."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle)
    return Path(__file__).resolve().parent.parent


def resource_path(*parts: str) -> Path:
    """A file under resources/ (icons, styles, the catalogue schema)."""
    return install_root().joinpath("resources", *parts)


def catalog_path() -> Path:
    """The catalogue to load: HEARTH_CATALOG if set, else the one shipped with the app."""
    override = os.environ.get("HEARTH_CATALOG")
    return Path(override).expanduser() if override else install_root() / "models_catalog.json"


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_component(text: str) -> str:
    """Turn a repo owner, repo name or branch into one safe folder name."""
    cleaned = _UNSAFE.sub("_", text).strip("._")
    return cleaned or "_"


def variant_dir(models: Path, repo: str, revision: str) -> Path:
    """Folder for one repo at one revision: two branches of a repo never share a folder."""
    parts = [safe_component(p) for p in repo.split("/") if p]
    return models.joinpath(*parts, safe_component(revision))


def set_aside(path: Path) -> Path | None:
    """Move a damaged file out of the way (``NAME.damaged-YYYYmmdd-HHMMSS``) so the next save cannot
    destroy what it held; the new name, or None when it could not be moved (or is already gone)."""
    import time

    target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        path.replace(target)
    except OSError:
        return None
    return target
