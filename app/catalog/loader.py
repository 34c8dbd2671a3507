"""Load ``models_catalog.json``: parse, validate against the JSON Schema, resolve, or fail whole."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.catalog.model import Catalog, Model, Variant, gguf_alternative
from app.errors import HearthError
from app.paths import catalog_path, resource_path
from app.templates.prompt import PromptTemplate, TemplateError

SCHEMA_VERSION = 1


class CatalogError(HearthError):
    """The catalogue file is unusable; the message names the file, the entry and the field."""

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"the model catalogue {path} is invalid, nothing was loaded:\n{lines}")


def load_schema() -> dict[str, Any]:
    with resource_path("schema", "models_catalog.schema.json").open(encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema


def _entry_and_field(document: Any, path: Sequence[str | int]) -> tuple[str, str]:
    """Name the catalogue entry (a model or template) and the field inside it for a JSON path."""
    if not path:
        return "the top level", ""
    head = path[0]
    if head == "models" and len(path) >= 2 and isinstance(path[1], int):
        index = path[1]
        model = document["models"][index] if index < len(document.get("models", [])) else None
        model_id = model.get("id") if isinstance(model, dict) else None
        entry = f"model {model_id!r} (models[{index}])" if isinstance(model_id, str) else f"models[{index}]"
        rest = path[2:]
        if len(rest) >= 4 and rest[0] == "repos" and rest[2] == "variants":
            repo = model["repos"][rest[1]] if isinstance(model, dict) else None
            variant = repo["variants"][rest[3]] if isinstance(repo, dict) else None
            key = None
            if isinstance(variant, dict):
                key = variant.get("branch") or variant.get("quant")
            if key:
                entry += f", variant {key!r}"
        return entry, _dotted(rest)
    if head == "templates" and len(path) >= 2:
        return f"template {path[1]!r}", _dotted(path[2:])
    return "the top level", _dotted(path)


def _dotted(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _schema_problems(document: Any) -> list[str]:
    import jsonschema  # imported here: it is slow to import and only needed once, at load

    validator = jsonschema.Draft202012Validator(load_schema())
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path))):
        path = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [p for p in error.validator_value if p not in error.instance]
            path = [*path, *missing[:1]]
            message = "is missing"
        elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = error.schema.get("properties", {})
            extra = [k for k in error.instance if k not in allowed]
            path = [*path, *extra[:1]]
            message = "is not a known field"
        else:
            message = error.message
        entry, field = _entry_and_field(document, path)
        problems.append(f"{entry}, field {field!r}: {message}" if field else f"{entry}: {message}")
    return problems


def _duplicates(values: list[str]) -> list[str]:
    return [value for value, count in Counter(values).items() if count > 1]


def _semantic_problems(document: dict[str, Any]) -> list[str]:
    problems = []
    models = document["models"]
    for dup in _duplicates([m["id"] for m in models]):
        problems.append(f"model {dup!r}, field 'id': the id is used by more than one model")
    for index, model in enumerate(models):
        entry = f"model {model['id']!r} (models[{index}])"
        if model["template"] not in document["templates"]:
            known = ", ".join(sorted(document["templates"]))
            problems.append(
                f"{entry}, field 'template': unknown template id {model['template']!r} "
                f"(known: {known})"
            )
        for r, repo in enumerate(model["repos"]):
            key = "branch" if repo["format"] == "gptq" else "quant"
            for dup in _duplicates([v[key] for v in repo["variants"]]):
                problems.append(
                    f"{entry}, field 'repos[{r}].variants': {key} {dup!r} appears more than once"
                )
    for template_id, spec in document["templates"].items():
        try:
            PromptTemplate(id=template_id, name=spec["name"], jinja=spec["jinja"]).compile()
        except TemplateError as exc:
            problems.append(f"template {template_id!r}, field 'jinja': {exc}")
    return problems


def _variants_for(model: dict[str, Any]) -> tuple[Variant, ...]:
    variants: list[Variant] = []
    for repo in model["repos"]:
        common: dict[str, Any] = {
            "model_id": model["id"],
            "repo": repo["repo"],
            "format": repo["format"],
            "verified": repo["verified"],
            "source": repo.get("source", "hub"),
            "supersedes": repo.get("supersedes"),
            "repo_note": repo.get("note"),
        }
        for spec in repo["variants"]:
            if repo["format"] == "gptq":
                variants.append(
                    Variant(
                        **common,
                        revision=spec["branch"],
                        bits=spec["bits"],
                        size_bytes=spec["size_bytes"],
                        group_size=spec["group_size"],
                        act_order=spec["act_order"],
                        damp_percent=spec["damp_percent"],
                        dataset=spec["dataset"],
                        dataset_url=spec.get("dataset_url"),
                        seq_len=spec["seq_len"],
                        exllama=spec["exllama"],
                        made_with=spec.get("made_with"),
                        description=spec["description"],
                        card_size_bytes=spec.get("card_size_bytes"),
                        notes=tuple(spec.get("notes", ())),
                    )
                )
            else:
                revision = repo.get("package_version", "main") if common["source"] == "pypi" else "main"
                variants.append(
                    Variant(
                        **common,
                        revision=revision,
                        bits=spec["bits"],
                        size_bytes=spec["size_bytes"],
                        files=tuple(spec["files"]),
                        quant=spec["quant"],
                        join_to=spec.get("join_to"),
                        max_ram_bytes=spec.get("max_ram_bytes"),
                        description=spec.get("description", ""),
                        notes=tuple(spec.get("notes", ())),
                    )
                )
    return tuple(
        replace(v, alternative=gguf_alternative(variants, v.bits)) if v.format == "gptq" else v
        for v in variants
    )


def _resolve(path: Path, document: dict[str, Any], imported: frozenset[str] = frozenset()) -> Catalog:
    """``imported``: ids of templates from the user's catalogue (taken from the Hub): they render as a
    model file's template does, in the template process."""
    templates = {
        template_id: PromptTemplate(
            id=template_id,
            name=spec["name"],
            jinja=spec["jinja"],
            stop=tuple(spec["stop"]),
            format=spec["format"],
            supports_system=spec["supports_system"],
            multi_turn=spec.get("multi_turn", ""),
            source=spec.get("source", ""),
            origin="imported" if template_id in imported else "catalogue",
        )
        for template_id, spec in document["templates"].items()
    }
    models = tuple(
        Model(
            id=m["id"],
            name=m["name"],
            creator=m["creator"],
            original_model=m["original_model"],
            license=m["license"],
            parameters=m["parameters"],
            architecture=m["architecture"],
            context_length=m["context_length"],
            template=templates[m["template"]],
            system_message=m["system_message"],
            stop=tuple(m["stop"]),
            variants=_variants_for(m),
            description=m.get("description", ""),
            seed=m.get("seed"),
            sampling=dict(m.get("sampling", {})),
            starter=m.get("starter", False),
            origin=m.get("origin", "curated"),
            imported_from=m.get("imported_from"),
        )
        for m in document["models"]
    )
    return Catalog(path=path, schema_version=document["schema_version"], templates=templates, models=models)


def document_problems(document: Any) -> list[str]:
    """Everything wrong with a catalogue document (schema first, then ids, templates and duplicates)."""
    if isinstance(document, dict) and document.get("schema_version") not in (None, SCHEMA_VERSION):
        return [
            f"the top level, field 'schema_version': this Hearth reads version {SCHEMA_VERSION}, "
            f"the file is version {document.get('schema_version')!r}; update Hearth"
        ]
    return _schema_problems(document) or _semantic_problems(document)


def checked_problems(document: Any) -> list[str]:
    """:func:`document_problems`, skipped for content that passed before (packaging, an earlier start).

    jsonschema alone takes ~0.1 s to import; the curated catalogue is checked when it is packaged and
    by the tests, a user's file the first time its content is seen (app/catalog/validated.py).
    """
    from app.catalog.validated import digest, is_validated, remember

    stamp = digest(document)
    if is_validated(stamp):
        return []
    problems = document_problems(document)
    if not problems:
        remember(stamp)
    return problems


def _merge_user(document: dict[str, Any], user_path: Path) -> tuple[dict[str, Any], list[str]]:
    """The curated document with the user's models added; problems with the user file are returned."""
    from app.catalog.user_catalog import UserCatalogError, read_document

    try:
        user = read_document(user_path)
    except UserCatalogError as exc:
        return document, [str(exc)]
    if user is None:
        return document, []
    problems = checked_problems(user)
    if problems:
        return document, [f"your catalogue {user_path} was not loaded: {p}" for p in problems]
    curated_ids = {m["id"] for m in document["models"]}
    notes = [
        f"your catalogue {user_path}: model {m['id']!r} has the id of a curated model and was skipped"
        for m in user["models"] if m["id"] in curated_ids
    ]
    models = [m for m in user["models"] if m["id"] not in curated_ids]
    merged = {
        **document,
        "templates": {**user["templates"], **document["templates"]},
        "models": [*document["models"], *models],
    }
    return merged, notes


def load_catalog(path: Path | None = None, *, include_user: bool = True) -> Catalog:
    """Read and validate the catalogue, merged with the user's; raise :class:`CatalogError` for a bad one.

    Problems with the user's own catalogue do not stop the curated one from loading: they are
    listed in ``Catalog.problems`` and the file is left as it is.
    """
    path = path or catalog_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(path, ["the file does not exist"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(path, [f"the file cannot be read: {exc}"]) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(
            path, [f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"]
        ) from None
    problems = checked_problems(document)
    if problems:
        raise CatalogError(path, problems)
    if not include_user:
        return _resolve(path, document)
    from app.catalog.user_catalog import user_catalog_path

    merged, user_problems = _merge_user(document, user_catalog_path())
    catalog = _resolve(path, merged, frozenset(merged["templates"]) - frozenset(document["templates"]))
    return replace(catalog, problems=tuple(user_problems), user_path=user_catalog_path())
