"""A chat's settings as a typed record (what the chat store keeps as JSON), and the system-message rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from app.engine.sampling import MergedSampling, merge_sampling

REMEDIES = ("fold_system", "merge_turns", "fold_system+merge_turns", "merge_turns+fold_system")


@dataclass(frozen=True)
class ChatSettings:
    """One chat's choices: its model, its own sampling values and a template remedy.

    ``sampling`` holds only what the user set; the model's catalogue defaults sit under it.
    Keys Hearth does not know are kept as they were stored (``extra``), so nothing is lost.
    """

    model_path: str | None = None
    sampling: Mapping[str, Any] = field(default_factory=dict)
    template_remedy: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_stored(cls, data: Mapping[str, Any] | None) -> ChatSettings:
        data = dict(data or {})
        path = data.pop("model_path", None)
        sampling = data.pop("sampling", None)
        remedy = data.pop("template_remedy", None)
        return cls(
            model_path=path if isinstance(path, str) else None,
            sampling=dict(sampling) if isinstance(sampling, dict) else {},
            template_remedy=remedy if isinstance(remedy, str) and remedy in REMEDIES else None,
            extra=data,
        )

    def to_stored(self) -> dict[str, Any]:
        stored = dict(self.extra)
        if self.model_path is not None:
            stored["model_path"] = self.model_path
        if self.sampling:
            stored["sampling"] = dict(self.sampling)
        if self.template_remedy is not None:
            stored["template_remedy"] = self.template_remedy
        return stored

    def with_changes(self, **changes: Any) -> ChatSettings:
        return replace(self, **changes)

    def merged_sampling(self, model_defaults: Mapping[str, Any] | None,
                        overrides: Mapping[str, Any] | None = None) -> MergedSampling:
        """Hearth's defaults < the model's < this chat's < ``overrides``; bad values named, not used."""
        return merge_sampling(model_defaults, self.sampling, overrides)


def effective_system(own: str | None, default: str | None) -> str | None:
    """The system message sent: the chat's own when it has one (``""`` means none), else the model's."""
    if own is not None:
        return own or None
    return default or None
