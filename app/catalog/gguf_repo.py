"""A GGUF repo's quants from its file names and listing sizes, and the memory each needs from the header."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from app.catalog.fit import RUNTIME_OVERHEAD
from app.engine.gguf_meta import GGUFMetadata
from app.hub.listing import HubFile

_QUANT = re.compile(
    r"(?<![A-Z0-9])(IQ[1-4]_(?:XXS|XS|NL|S|M)|Q[2-8]_K(?:_(?:XL|S|M|L))?|Q[4-8]_[01]|TQ[12]_0|MXFP4|BF16|F16)"
    r"(?![A-Z0-9])"
)
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")
_JOIN_PART = re.compile(r"^(.*\.gguf)-split-([a-z])$")
_PREFERRED = ("Q4_K_M", "Q4_K_S", "Q5_K_M", "Q4_0", "Q8_0")
# Context the memory estimate assumes: what a chat needs, not the model's full window.
ESTIMATE_CONTEXT = 4096


def quant_of(name: str) -> str | None:
    """``Q4_K_M`` from ``mistral-7b.Q4_K_M.gguf`` (any case), or None."""
    match = _QUANT.search(name.rsplit("/", 1)[-1].upper())
    return match[1] if match else None


def bits_of(quant: str) -> int:
    if quant in ("F16", "BF16"):
        return 16
    if quant == "MXFP4":
        return 4
    digits = re.search(r"\d", quant)
    return max(2, int(digits[0])) if digits else 16


def is_model_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    if "mmproj" in name or "imatrix" in name:
        return False
    return name.endswith(".gguf") or bool(_JOIN_PART.match(name))


def group_quants(files: tuple[HubFile, ...]) -> list[dict[str, Any]]:
    """One variant per quant: single files, shards (-00001-of-0000N) or parts joined after download."""
    groups: dict[str, list[HubFile]] = defaultdict(list)
    for f in files:
        if not is_model_file(f.path):
            continue
        quant = quant_of(f.path)
        if quant:
            groups[quant].append(f)
    variants = []
    for quant, members in groups.items():
        members.sort(key=lambda f: f.path)
        singles = [f for f in members if not _SHARD.search(f.path) and not _JOIN_PART.match(f.path)]
        if singles:  # several single files of one quant: take the first, as llama.cpp's -hf does
            members = singles[:1]
        variant: dict[str, Any] = {
            "quant": quant,
            "bits": bits_of(quant),
            "files": [f.path for f in members],
            "size_bytes": max(1, sum(f.size for f in members)),
        }
        join = _JOIN_PART.match(members[0].path)
        if join and len(members) > 1:
            variant["join_to"] = join[1]
        variants.append(variant)
    return sorted(variants, key=lambda v: (v["bits"], v["size_bytes"]))


def representative(variants: list[dict[str, Any]]) -> dict[str, Any]:
    """The quant whose header is read for the whole repo (a common one, else the smallest)."""
    by_quant = {v["quant"]: v for v in variants}
    for quant in _PREFERRED:
        if quant in by_quant:
            return by_quant[quant]
    return min(variants, key=lambda v: v["size_bytes"])


def kv_cache_bytes(meta: GGUFMetadata, context: int) -> int:
    """f16 keys and values for ``context`` tokens over every layer."""
    layers = meta.block_count or 0
    kv_heads = meta.head_count_kv or meta.head_count or 0
    try:
        head_k, head_v = meta.head_dim_k, meta.head_dim_v
    except (ZeroDivisionError, TypeError):
        return 0
    return layers * context * kv_heads * (head_k + head_v) * 2


def memory_needed(size_bytes: int, meta: GGUFMetadata) -> int:
    """RAM/VRAM to run a quant of this model with a chat-sized context, from the file's own shape."""
    context = min(meta.context_length or ESTIMATE_CONTEXT, ESTIMATE_CONTEXT)
    return size_bytes + kv_cache_bytes(meta, context) + RUNTIME_OVERHEAD


def parameter_count(meta: GGUFMetadata) -> int:
    total = 0
    for tensor in meta.tensors:
        elements = 1
        for dim in tensor.shape:
            elements *= dim
        total += elements
    return total
