"""``hearth catalog add``: turn a Hub repo (TheBloke-style card or GGUF repo) into a user catalogue entry."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.catalog.card import CardError, GptqRow, ModelCard, parse_card
from app.catalog.card_prompt import ChosenTemplate, choose_from_card, choose_from_gguf
from app.catalog.gguf_repo import group_quants, memory_needed, parameter_count, representative
from app.catalog.loader import document_problems
from app.catalog.user_catalog import read_document, with_model, without_model, write_document
from app.errors import HearthError
from app.hub.errors import AccessDenied, EntryNotFound, HubError, RepoNotFound
from app.hub.listing import RepoListing, list_branches, list_files
from app.hub.refs import parse_repo_ref
from app.hub.remote_gguf import RemoteHeader, read_remote_header
from app.hub.small_files import fetch_json, fetch_text, require_online
from app.paths import catalog_path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_PLAIN = {"name": "Plain text", "format": "{prompt}", "jinja": "{% for m in messages %}{{ m.content }}\n{% endfor %}",
          "stop": [], "supports_system": False, "source": "the card gives no prompt template"}

Progress = Callable[[str], None]


class ImportError_(HearthError):
    """The repo cannot be imported; nothing was added. (Named so it does not shadow the builtin.)"""


@dataclass
class ImportPlan:
    """What an import would add: the model entry, the templates it needs, and notes for the user."""

    model: dict[str, Any]
    templates: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    header_bytes: int = 0


def _curated_templates() -> dict[str, dict[str, Any]]:
    with catalog_path().open(encoding="utf-8") as f:
        templates: dict[str, dict[str, Any]] = json.load(f)["templates"]
    return templates


def _slug(text: str) -> str:
    text = re.sub(r"[-_.](gguf|gptq|awq|ggml|exl2)$", "", text.strip(), flags=re.IGNORECASE)
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return slug or "model"


def _model_id(repo: str, taken: set[str]) -> str:
    """An id from the repo name; the owner is added (then a number) when another model has it."""
    owner, _, name = repo.partition("/")
    for candidate in (_slug(name), f"{_slug(name)}-{_slug(owner)}"):
        if candidate not in taken:
            return candidate
    number = 2
    while f"{_slug(name)}-{_slug(owner)}-{number}" in taken:
        number += 1
    return f"{_slug(name)}-{_slug(owner)}-{number}"


def _taken_ids(repo: str | None = None) -> set[str]:
    """Curated ids, and the ids of models imported from other repos (importing a repo again updates it)."""
    with catalog_path().open(encoding="utf-8") as f:
        taken = {m["id"] for m in json.load(f)["models"]}
    if repo is not None:
        try:
            user = read_document() or {}
        except HearthError:
            user = {}
        taken |= {m.get("id") for m in user.get("models", []) if m.get("imported_from") != repo}
    return taken


def _existing_id(repo: str) -> str | None:
    try:
        user = read_document() or {}
    except HearthError:
        return None
    return next((m.get("id") for m in user.get("models", []) if m.get("imported_from") == repo), None)


def _parameters_from_config(config: dict[str, Any] | None) -> int | None:
    if not config:
        return None
    try:
        h, layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
        vocab, inter = int(config["vocab_size"]), int(config["intermediate_size"])
        heads = int(config.get("num_attention_heads") or 1)
        kv = int(config.get("num_key_value_heads") or heads)
    except (KeyError, TypeError, ValueError):
        return None
    embeddings = vocab * h * (1 if config.get("tie_word_embeddings") else 2)
    per_layer = 2 * h * h + 2 * h * (h * kv // heads) + 3 * h * inter + 2 * h
    return embeddings + layers * per_layer + h


def _parameters_from_name(*names: str | None) -> int | None:
    for name in names:
        if not name:
            continue
        match = re.search(r"(?<![\w.])(\d+(?:\.\d+)?)\s*([BM])(?![a-zA-Z])", name, re.IGNORECASE)
        if match:
            return int(float(match[1]) * (1e9 if match[2].upper() == "B" else 1e6))
    return None


def _hub_repo(value: Any) -> str | None:
    """``owner/name`` from a front-matter value that may be a URL or a list."""
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, str):
        return None
    match = re.search(r"(?:huggingface\.co/)?([\w.-]+/[\w.-]+)/?$", value.strip())
    return match[1] if match else None


def _original_model(card: ModelCard | None, repo: str) -> str:
    if card:
        for key in ("base_model", "model_link"):
            found = _hub_repo(card.front.get(key))
            if found:
                return found
        if card.links.get("original"):
            return card.links["original"]
        match = re.search(r"model files for \[[^\]]*\]\(https?://huggingface\.co/([\w.-]+/[\w.-]+)\)", card.text)
        if match:
            return match[1]
    return repo


def _card_name(card: ModelCard | None) -> str | None:
    if card is None:
        return None
    name = card.front.get("model_name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    if card.title:
        return re.sub(r"\s*-?\s*(GPTQ|GGUF|AWQ|GGML)\s*$", "", card.title).strip() or None
    return None


def _weights(listing: RepoListing) -> list[str]:
    return [f.path for f in listing.files if f.path.lower().endswith(WEIGHT_SUFFIXES)]


def _same_size(card_bytes: int, hub_bytes: int) -> bool:
    """The card rounds to two decimals of a GB: a difference within rounding is no disagreement."""
    return abs(card_bytes - hub_bytes) <= max(6_000_000, card_bytes * 0.006)


def _gptq_variant(repo: str, row: GptqRow, branches: set[str], notes: list[str]) -> dict[str, Any]:
    """The row as a catalogue variant, checked against the branch's quantize_config.json and listing."""
    spec: dict[str, Any] = {
        "branch": row.branch, "bits": row.bits, "group_size": row.group_size, "act_order": row.act_order,
        "damp_percent": row.damp_percent, "dataset": row.dataset, "seq_len": row.seq_len,
        "size_bytes": row.size_bytes, "exllama": row.exllama, "description": row.description,
    }
    if row.dataset_url:
        spec["dataset_url"] = row.dataset_url
    if row.made_with:
        spec["made_with"] = row.made_with
    own: list[str] = []
    if row.branch not in branches:
        own.append(f"branch {row.branch} is on the card but not on the Hub")
    else:
        listing = list_files(repo, row.branch)
        config = fetch_json(repo, row.branch, "quantize_config.json")
        if config:
            checks = (("bits", "bits", config.get("bits")),
                      ("group_size", "group size", None if config.get("group_size") in (-1, None)
                       else config.get("group_size")),
                      ("act_order", "act order", config.get("desc_act")),
                      ("damp_percent", "damp %", config.get("damp_percent")))
            for key, label, value in checks:
                source_key = {"act_order": "desc_act"}.get(key, key)
                if source_key not in config or (spec[key] is None and key != "group_size"):
                    continue  # only columns both give are compared; the card's own gaps stay gaps
                if value != spec[key]:
                    own.append(f"{label}: the card says {spec[key]}, quantize_config.json says {value}")
                    if not (key == "bits" and value not in (2, 3, 4, 8)):
                        spec[key] = value
        weights = [f for f in listing.files if f.path.lower().endswith(WEIGHT_SUFFIXES)]
        if weights:
            hub_size = sum(f.size for f in listing.files if f.name != ".gitattributes")
            if not _same_size(row.size_bytes, hub_size):
                own.append(f"size: the card says {row.size_bytes / 1e9:.2f} GB, the Hub listing "
                           f"{hub_size / 1e9:.2f} GB (the listing is used)")
                spec["card_size_bytes"] = row.size_bytes
            spec["size_bytes"] = hub_size
    if own:
        spec["notes"] = own
        notes.extend(f"{row.branch}: {n}" for n in own)
    return spec


def _read_header(repo: str, variants: list[dict[str, Any]], listing: RepoListing,
                 notes: list[str]) -> RemoteHeader | None:
    chosen = representative(variants)
    first = chosen["files"][0]
    try:
        return read_remote_header(repo, listing.commit, first, listing.file(first).size)
    except HubError as exc:
        notes.append(f"could not read the GGUF header of {first}: {exc}")
        return None


def _gguf_repo_spec(repo: str, listing: RepoListing, header: RemoteHeader | None,
                    variants: list[dict[str, Any]], card: ModelCard | None = None, **extra: Any) -> dict[str, Any]:
    """The repo's entry; memory from the file's header, else the card's "Max RAM required"; its use cases."""
    for v in variants:
        said = card.gguf_files.get(v["files"][0].rsplit("/", 1)[-1]) if card else None
        if header is not None:
            v["max_ram_bytes"] = memory_needed(v["size_bytes"], header.metadata)
        elif said and said.max_ram_bytes:
            v["max_ram_bytes"] = said.max_ram_bytes
        if said and said.description:
            v["description"] = said.description
    return {"repo": repo, "format": "gguf", "verified": True, **extra, "variants": variants}


def _gguf_sibling(card: ModelCard, notes: list[str]) -> tuple[dict[str, Any] | None, RemoteHeader | None]:
    """The GGUF repo the card links (or the GGUF repo that replaced a linked GGML one)."""
    linked = card.links.get("gguf")
    supersedes = None
    if not linked and card.links.get("ggml"):
        supersedes = card.links["ggml"]
        linked = re.sub(r"GGML$", "GGUF", supersedes, flags=re.IGNORECASE)
    if not linked:
        return None, None
    try:
        listing = list_files(linked, "main")
    except (RepoNotFound, EntryNotFound):
        notes.append(f"the card links the GGUF repo {linked}, which is not on the Hub; only the GPTQ branches "
                     "were added")
        return None, None
    except AccessDenied as exc:
        notes.append(f"the GGUF repo {linked} was not added: {exc}")
        return None, None
    variants = group_quants(listing.files)
    if not variants:
        notes.append(f"the GGUF repo {linked} has no GGUF files; only the GPTQ branches were added")
        return None, None
    header = _read_header(linked, variants, listing, notes)
    sibling_text = fetch_text(linked, listing.commit, "README.md")
    try:
        sibling_card = parse_card(sibling_text) if sibling_text else None
    except CardError:  # its use cases are hints; a card we cannot read costs only those
        sibling_card = None
    extra: dict[str, Any] = {}
    if supersedes:
        extra = {"supersedes": supersedes,
                 "note": f"The card links the GGML repo {supersedes}, which llama.cpp no longer loads; "
                         f"{linked} replaced it."}
    return _gguf_repo_spec(linked, listing, header, variants, sibling_card, **extra), header


def _template(card: ModelCard | None, header: RemoteHeader | None, model_id: str, repo: str,
              templates: dict[str, dict[str, Any]], prefer_file: bool) -> ChosenTemplate:
    from_card = choose_from_card(card.prompt, card.text, model_id, repo, templates) if card else None
    from_file = None
    if header is not None and header.metadata.chat_template:
        meta = header.metadata
        from_file = choose_from_gguf(meta.chat_template or "", meta.bos_token, meta.eos_token, model_id, repo,
                                     templates)
    first, second = (from_file, from_card) if prefer_file else (from_card, from_file)
    chosen = first or second
    if chosen is None:
        return ChosenTemplate(f"{model_id}-plain", dict(_PLAIN), None, "card")
    if from_card and chosen is not from_card and from_card.system_message:
        chosen = ChosenTemplate(chosen.id, chosen.spec, from_card.system_message, chosen.origin)
    return chosen


def _not_runnable(repo: str, listing: RepoListing, card: ModelCard | None) -> HearthError:
    """The one-line reason a repo with neither GGUF files nor a branch table cannot be imported."""
    sibling = card.links.get("gguf") if card else None
    offer = (f"; its card links the GGUF repo {sibling}: run `hearth catalog add {sibling}`" if sibling
             else f"; look for a GGUF version: `hearth search {repo.split('/')[-1]} --format gguf`")
    names = {f.name.lower() for f in listing.files}
    lowered = repo.lower()
    if "awq" in lowered or (card and "awq" in str(card.front.get("tags", "")).lower()):
        return ImportError_(f"{repo} holds AWQ weights, which llama.cpp cannot run{offer}")
    if card is not None and ("gptq" in lowered or "quantize_config.json" in names):
        return ImportError_(
            f"the model card of {repo} has no recognisable GPTQ branch table "
            "('| Branch | Bits | GS | Act Order | ...'), so Hearth cannot tell its variants apart"
        )
    if _weights(listing):
        return ImportError_(f"{repo} holds only safetensors/PyTorch weights, which llama.cpp cannot run "
                            f"directly{offer}")
    return ImportError_(f"{repo} has no GGUF files and no GPTQ branch table on its card: nothing Hearth can run"
                        f"{offer}")


def plan_import(text: str, progress: Progress | None = None) -> ImportPlan:
    """Read the repo from the Hub and build its catalogue entry; writes nothing."""
    say = progress or (lambda _message: None)
    ref = parse_repo_ref(text)
    repo = ref.repo
    if "/" not in repo:
        raise ImportError_(f"{text!r} names no owner: write OWNER/NAME, e.g. TheBloke/Mistral-7B-OpenOrca-GGUF")
    require_online(f"importing {repo}")
    say(f"Reading {repo} on the Hub…")
    listing = list_files(repo, "main")
    card_text = fetch_text(repo, listing.commit, "README.md")
    card = parse_card(card_text) if card_text else None
    templates = _curated_templates()
    model_id = _existing_id(repo) or _model_id(repo, _taken_ids(repo))
    notes: list[str] = []
    gguf_variants = group_quants(listing.files)
    header: RemoteHeader | None = None
    repos: list[dict[str, Any]] = []
    if gguf_variants:
        quant = ref.quant or ref.revision
        if quant:  # REPO:QUANT keeps one quant
            wanted = [v for v in gguf_variants if v["quant"].lower() == quant.lower()]
            if not wanted:
                known = ", ".join(v["quant"] for v in gguf_variants)
                raise ImportError_(f"{repo} has no {quant} quant (it has {known})")
            gguf_variants = wanted
        say(f"Reading the GGUF header of {representative(gguf_variants)['files'][0]} (a few hundred KB)…")
        header = _read_header(repo, gguf_variants, listing, notes)
        repos.append(_gguf_repo_spec(repo, listing, header, gguf_variants, card))
        origin = "gguf-repo"
    elif card is not None and card.has_table:
        say(f"Checking {len(card.rows)} branches against the Hub…")
        branches = {b.name for b in list_branches(repo)}
        variants = [_gptq_variant(repo, row, branches, notes) for row in card.rows]
        repos.append({"repo": repo, "format": "gptq", "verified": True, "variants": variants})
        sibling, header = _gguf_sibling(card, notes)
        if sibling:
            repos.append(sibling)
        origin = "card"
    else:
        raise _not_runnable(repo, listing, card)

    config = None if origin == "gguf-repo" else fetch_json(repo, listing.commit, "config.json")
    chosen = _template(card, header, model_id, repo, templates, prefer_file=origin == "gguf-repo")
    meta = header.metadata if header else None
    front = card.front if card else {}
    name = _card_name(card) or (meta.name if meta else None) or re.sub(r"[-_](GGUF|GPTQ)$", "", repo.split("/")[1],
                                                                       flags=re.IGNORECASE)
    context = ((config or {}).get("max_position_embeddings") if origin == "card" else None) or (
        meta.context_length if meta else None) or next(
        (v.get("seq_len") for r in repos for v in r["variants"] if v.get("seq_len")), None)
    if not context:
        context = 2048
        notes.append("no context length found on the card, config.json or file: assuming 2048 tokens")
    parameters = (parameter_count(meta) if meta and meta.tensors else None) or _parameters_from_config(config) or \
        _parameters_from_name(name, repo) or 1
    creator = front.get("model_creator") or _original_model(card, repo).split("/")[0]
    architecture = (meta.architecture if meta else None) or (config or {}).get("model_type") or \
        front.get("model_type") or "unknown"
    model: dict[str, Any] = {
        "id": model_id,
        "name": str(name),
        "creator": str(creator),
        "original_model": _original_model(card, repo),
        "license": str(front.get("license") or "unknown"),
        "parameters": int(parameters),
        "architecture": str(architecture),
        "context_length": int(context),
        "template": chosen.id,
        "system_message": chosen.system_message,
        "stop": [],
        "description": (f"Imported from the model card of {repo}." if origin == "card"
                        else f"Imported from the GGUF repo {repo}; template and memory read from the file's header."),
        "origin": origin,
        "imported_from": repo,
        "repos": repos,
    }
    used = {chosen.id: chosen.spec if chosen.spec else templates[chosen.id]}
    return ImportPlan(model, used, notes, header.bytes_fetched if header else 0)


def commit_import(plan: ImportPlan) -> None:
    """Add the planned model to the user catalogue, or raise and leave the file as it was."""
    document = with_model(read_document(), plan.model, plan.templates)
    problems = document_problems(document)
    if problems:
        raise ImportError_(f"{plan.model['imported_from']} gave an entry Hearth cannot use, nothing was added: "
                           f"{problems[0]}")
    write_document(document)


def remove_model(model_id: str) -> str:
    """Take an imported model out of the user catalogue; returns the repo it came from."""
    document = read_document()
    models = {m.get("id"): m for m in (document or {}).get("models", [])}
    if model_id not in models:
        if model_id in _taken_ids():
            raise HearthError(f"{model_id!r} is a curated model that ships with Hearth; only imported models "
                              "can be removed")
        known = ", ".join(sorted(str(k) for k in models)) or "none yet"
        raise HearthError(f"no imported model {model_id!r} (imported: {known})")
    assert document is not None
    write_document(without_model(document, model_id))
    return str(models[model_id].get("imported_from") or model_id)
