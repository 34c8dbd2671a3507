"""Plain data classes for the resolved catalogue: models, their variants, and lookups."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from app.engine.templates import PromptTemplate

Format = Literal["gguf", "gptq"]

# For a GPTQ branch, the GGUF quant llama.cpp users pick at the same bit width.
_GGUF_FOR_BITS = {2: "Q2_K", 3: "Q3_K_M", 4: "Q4_K_M", 5: "Q5_K_M", 6: "Q6_K", 8: "Q8_0"}


@dataclass(frozen=True)
class Variant:
    """One downloadable thing: a GPTQ branch or a GGUF quant (one file or its parts)."""

    model_id: str
    repo: str
    revision: str
    format: Format
    bits: int
    size_bytes: int
    files: tuple[str, ...] = ()
    quant: str | None = None
    group_size: int | None = None
    act_order: bool | None = None
    damp_percent: float | None = None
    dataset: str | None = None
    dataset_url: str | None = None
    seq_len: int | None = None
    exllama: bool | None = None
    made_with: str | None = None
    description: str = ""
    join_to: str | None = None
    max_ram_bytes: int | None = None
    verified: bool = True
    source: Literal["hub", "pypi"] = "hub"
    supersedes: str | None = None
    repo_note: str | None = None
    alternative: str | None = None
    card_size_bytes: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """Stable id, e.g. ``mistral-7b-openorca:gptq:main`` or ``...:gguf:Q4_K_M``."""
        tag = self.revision if self.format == "gptq" else (self.quant or self.files[0])
        return f"{self.model_id}:{self.format}:{tag}"

    @property
    def runnable(self) -> bool:
        """Whether llama.cpp can load it as it is."""
        return self.format == "gguf"

    @property
    def label(self) -> str:
        """Short human name: ``GGUF Q4_K_M`` or ``GPTQ 4-bit · 128g · act order``."""
        if self.format == "gguf":
            return f"GGUF {self.quant}"
        group = "no group" if self.group_size is None else f"{self.group_size}g"
        order = "act order" if self.act_order else "no act order"
        return f"GPTQ {self.bits}-bit · {group} · {order}"

    @property
    def loader(self) -> str:
        """Which program runs it, in plain words."""
        if self.format == "gguf":
            return "llama.cpp (built into Hearth): CPU, with GPU offload where available"
        return (
            "GPU loaders (ExLlama, AutoGPTQ, Transformers) as it is. llama.cpp cannot load GPTQ "
            "directly: Hearth converts the branch to GGUF on this machine, then chats with it."
        )

    def to_json(self) -> dict[str, Any]:
        """The variant as ``hearth catalog --json`` prints it."""
        return {
            "id": self.id,
            "repo": self.repo,
            "revision": self.revision,
            "format": self.format,
            "files": list(self.files),
            "bits": self.bits,
            "group_size": self.group_size,
            "act_order": self.act_order,
            "size_bytes": self.size_bytes,
            "quant": self.quant,
            "damp_percent": self.damp_percent,
            "dataset": self.dataset,
            "seq_len": self.seq_len,
            "exllama": self.exllama,
            "made_with": self.made_with,
            "description": self.description,
            "join_to": self.join_to,
            "max_ram_bytes": self.max_ram_bytes,
            "verified": self.verified,
            "source": self.source,
            "supersedes": self.supersedes,
            "runnable": self.runnable,
            "loader": self.loader,
            "alternative": self.alternative,
            "card_size_bytes": self.card_size_bytes,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Model:
    """A model and all its variants, with the prompt format it was trained on."""

    id: str
    name: str
    creator: str
    original_model: str
    license: str
    parameters: int
    architecture: str
    context_length: int
    template: PromptTemplate
    system_message: str | None
    stop: tuple[str, ...]
    variants: tuple[Variant, ...]
    description: str = ""
    seed: str | None = None
    sampling: dict[str, float | int] = field(default_factory=dict)
    starter: bool = False
    origin: str = "curated"
    imported_from: str | None = None

    @property
    def imported(self) -> bool:
        """Added by the user (``hearth catalog add``), so it can be removed again."""
        return self.origin != "curated"

    @property
    def source_label(self) -> str:
        """Where the entry comes from, in words: curated, imported card, GGUF repo."""
        return {"curated": "curated", "card": "imported card", "gguf-repo": "GGUF repo"}.get(self.origin, self.origin)

    @property
    def stop_strings(self) -> tuple[str, ...]:
        """The template's stop strings followed by the model's own, without repeats."""
        return tuple(dict.fromkeys(self.template.stop + self.stop))

    @property
    def parameters_label(self) -> str:
        billions = self.parameters / 1e9
        if billions >= 1:
            return f"{billions:.0f}B" if billions >= 10 else f"{billions:.1f}B"
        if self.parameters >= 1e6:
            return f"{self.parameters / 1e6:.0f}M"
        return f"{self.parameters / 1e3:.0f}K"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "creator": self.creator,
            "original_model": self.original_model,
            "license": self.license,
            "parameters": self.parameters,
            "architecture": self.architecture,
            "context_length": self.context_length,
            "template": self.template.id,
            "template_name": self.template.name,
            "template_source": self.template.source,
            "source": self.origin,
            "imported_from": self.imported_from,
            "system_message": self.system_message,
            "stop": list(self.stop_strings),
            "sampling": dict(self.sampling),
            "starter": self.starter,
            "description": self.description,
            "variants": [v.to_json() for v in self.variants],
        }


@dataclass(frozen=True)
class Catalog:
    """The whole validated catalogue. Built only by :func:`app.catalog.load_catalog`."""

    path: Path
    schema_version: int
    templates: dict[str, PromptTemplate]
    models: tuple[Model, ...]
    problems: tuple[str, ...] = ()
    user_path: Path | None = None

    def __iter__(self) -> Iterator[Model]:
        return iter(self.models)

    def model(self, model_id: str) -> Model:
        for model in self.models:
            if model.id == model_id:
                return model
        raise KeyError(model_id)

    def variants(self) -> Iterator[tuple[Model, Variant]]:
        for model in self.models:
            for variant in model.variants:
                yield model, variant

    def variant(self, variant_id: str) -> tuple[Model, Variant]:
        for model, variant in self.variants():
            if variant.id == variant_id:
                return model, variant
        raise KeyError(variant_id)

    def starter(self) -> Model | None:
        return next((m for m in self.models if m.starter), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "models": [m.to_json() for m in self.models],
        }


def gguf_alternative(variants: list[Variant], bits: int) -> str | None:
    """The GGUF quant to run instead of a GPTQ branch of ``bits`` bits, if the model has one."""
    ggufs = {v.quant: v for v in variants if v.format == "gguf"}
    preferred = _GGUF_FOR_BITS.get(bits)
    if preferred in ggufs:
        return ggufs[preferred].id
    same_bits = [v for v in ggufs.values() if v.bits == bits]
    if same_bits:
        return same_bits[0].id
    if "Q4_K_M" in ggufs:
        return ggufs["Q4_K_M"].id
    return next(iter(ggufs.values())).id if ggufs else None
