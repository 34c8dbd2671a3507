"""How the user wants one model file loaded (context, GPU layers, KV cache, flash attention), kept per file
in settings.json: the window and ``hearth chat`` load a model the same way."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, cast, get_args

from app.engine.protocol import FlashAttention, KvCacheType
from app.engine.settings_file import read_settings, write_setting
from app.errors import HearthError

KEY = "model_load"  # settings.json: {"model_load": {"/resolved/path.gguf": {"context_length": 4096, ...}}}
KV_CACHE_TYPES: tuple[KvCacheType, ...] = ("f16", "q8_0", "q4_0")
FLASH_ATTENTION: tuple[FlashAttention, ...] = cast(tuple[FlashAttention, ...], get_args(FlashAttention))
MIN_CONTEXT = 256  # shorter holds no useful chat
MAX_CONTEXT = 1 << 24
MAX_GPU_LAYERS = 1 << 12


class PreferenceError(HearthError):
    """A load preference that is out of range or of the wrong kind, named with what is allowed."""


@dataclass(frozen=True)
class LoadPreferences:
    """None means Auto: the planner's choice (context from the model capped by memory; layers that fit)."""

    context_length: int | None = None
    gpu_layers: int | None = None
    kv_cache_type: KvCacheType = "f16"
    flash_attention: FlashAttention = "auto"

    def __post_init__(self) -> None:
        for field in fields(self):
            _check(field.name, getattr(self, field.name))

    @property
    def is_auto(self) -> bool:
        return self == LoadPreferences()

    def plan_arguments(self) -> dict[str, Any]:
        """Keyword arguments for :func:`app.engine.chat_session.plan_load`."""
        return {"ctx": self.context_length, "gpu_layers": self.gpu_layers,
                "kv_cache_type": self.kv_cache_type, "flash_attention": self.flash_attention}

    def to_json(self) -> dict[str, Any]:
        """Only what differs from Auto (an all-Auto entry is not stored at all)."""
        default = LoadPreferences()
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}

    def describe(self) -> str:
        """``context 1,024 tokens, KV cache q8_0`` (what is not Auto), or ``all Auto``."""
        parts = []
        if self.context_length is not None:
            parts.append(f"context {self.context_length:,} tokens")
        if self.gpu_layers is not None:
            parts.append(f"{self.gpu_layers} GPU layers")
        if self.kv_cache_type != "f16":
            parts.append(f"KV cache {self.kv_cache_type}")
        if self.flash_attention != "auto":
            parts.append(f"flash attention {self.flash_attention}")
        return ", ".join(parts) or "all Auto"


_LABELS = {"context_length": "context length", "gpu_layers": "GPU layers", "kv_cache_type": "KV cache type",
           "flash_attention": "flash attention"}


def _check(name: str, value: object) -> None:
    label = _LABELS[name]
    if name == "context_length":
        if value is not None and (type(value) is not int or not MIN_CONTEXT <= value <= MAX_CONTEXT):
            raise PreferenceError(f"{label} must be Auto or a whole number from {MIN_CONTEXT} to {MAX_CONTEXT:,}, "
                                  f"not {value!r}")
    elif name == "gpu_layers":
        if value is not None and (type(value) is not int or not 0 <= value <= MAX_GPU_LAYERS):
            raise PreferenceError(f"{label} must be Auto or a whole number of at least 0, not {value!r}")
    elif name == "kv_cache_type":
        if value not in KV_CACHE_TYPES:
            raise PreferenceError(f"{label} must be one of {', '.join(KV_CACHE_TYPES)}, not {value!r}")
    elif value not in FLASH_ATTENTION:
        raise PreferenceError(f"{label} must be one of {', '.join(FLASH_ATTENTION)}, not {value!r}")


def parse_preferences(entry: object) -> tuple[LoadPreferences, tuple[str, ...]]:
    """Preferences from a stored entry; each bad value is named in the problems and Auto used instead."""
    if not isinstance(entry, dict):
        return LoadPreferences(), (f"the saved load settings are not a table ({entry!r}); Auto is used",)
    values: dict[str, Any] = {}
    problems = []
    for field in fields(LoadPreferences):
        if field.name not in entry:
            continue
        try:
            _check(field.name, entry[field.name])
        except PreferenceError as exc:
            problems.append(f"saved {exc}; Auto is used")
            continue
        values[field.name] = entry[field.name]
    return LoadPreferences(**values), tuple(problems)


def model_key(model_path: str | Path) -> str:
    """The settings key of a model file: its resolved path (a link and its target share preferences)."""
    return str(Path(model_path).expanduser().resolve())


def load_preferences(settings_file: Path, model_path: str | Path) -> tuple[LoadPreferences, tuple[str, ...]]:
    """The preferences saved for ``model_path`` (Auto when none) and what was wrong with them, if anything.

    Never raises: an unreadable settings file or a bad value is reported and Auto used, so a load goes on.
    """
    try:
        section = read_settings(settings_file).get(KEY, {})
    except HearthError as exc:
        return LoadPreferences(), (f"{exc}; Auto is used",)
    if not isinstance(section, dict):
        return LoadPreferences(), (f"the {KEY!r} section of {settings_file} is not a table; Auto is used",)
    entry = section.get(model_key(model_path))
    if entry is None:
        return LoadPreferences(), ()
    preferences, problems = parse_preferences(entry)
    name = Path(model_path).name
    return preferences, tuple(f"{name}: {problem}" for problem in problems)


def save_preferences(settings_file: Path, model_path: str | Path, preferences: LoadPreferences) -> None:
    """Save ``preferences`` for ``model_path``, keeping every other model's and every other key.

    An unreadable settings file is left as it is (HearthError), as is an unreadable section.
    """
    section = read_settings(settings_file).get(KEY, {})
    if not isinstance(section, dict):
        raise HearthError(f"the {KEY!r} section of {settings_file} is not a table: fix or delete it")
    section = dict(section)
    key = model_key(model_path)
    if preferences.is_auto:
        section.pop(key, None)
    else:
        section[key] = preferences.to_json()
    write_setting(settings_file, KEY, section or None)
