"""Model repos for the import tests: seed cards with their branches, GGUF repos, and bad ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

from app.catalog.card import parse_card
from tests.hub.hub_server import HubServer

# Copies of the five seed cards (../shared/seeds), so the tests need nothing outside the repo.
SEEDS = Path(__file__).resolve().parent / "seed_cards"

LLAMA_CONFIG = {"model_type": "llama", "hidden_size": 5120, "num_hidden_layers": 40, "vocab_size": 32000,
                "intermediate_size": 13824, "num_attention_heads": 40, "max_position_embeddings": 4096}


def seed_text(name: str) -> str:
    return next(SEEDS.glob(f"{name}_*.txt")).read_text(encoding="utf-8")


def quantize_config(bits: int, group_size: int | None, act_order: bool, damp: float | None) -> bytes:
    config = {"bits": bits, "group_size": group_size or -1, "desc_act": act_order}
    if damp is not None:
        config["damp_percent"] = damp
    return json.dumps(config).encode()


def add_card_repo(hub: HubServer, repo: str, card: str, *, config: dict | None = None,
                  weights: dict[str, int] | None = None, skip: tuple[str, ...] = ()) -> None:
    """A GPTQ repo whose branches are the card's rows, each with a quantize_config.json agreeing with it."""
    rows = parse_card(card).rows
    branches: dict[str, dict[str, bytes | Path]] = {}
    for row in rows:
        if row.branch in skip:
            continue
        files: dict[str, bytes | Path] = {
            "quantize_config.json": quantize_config(row.bits, row.group_size, row.act_order, row.damp_percent),
        }
        if weights and row.branch in weights:
            files["model.safetensors"] = b"\0" * weights[row.branch]
        branches[row.branch] = files
    main = branches.setdefault("main", {})
    main["README.md"] = card.encode()
    main["config.json"] = json.dumps(config or LLAMA_CONFIG).encode()
    hub.add_repo(repo, branches)


def gptq_repo_of(card: str) -> str:
    links = parse_card(card).links
    return links["gptq"]


def flip_cell(card: str, branch: str, column: int, value: str) -> str:
    """The card with one cell of one branch's row replaced (column counted from 0 after the branch)."""
    lines = card.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("|") and re.search(rf"\[?{re.escape(branch)}\]?[(| ]", line):
            cells = line.split("|")
            cells[column + 2] = f" {value} "
            lines[i] = "|".join(cells)
            break
    return "\n".join(lines)
