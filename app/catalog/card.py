"""Read a Hugging Face model card: front matter, TheBloke's GPTQ branch table, prompt block, linked repos."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.errors import HearthError


class CardError(HearthError):
    """The model card cannot be turned into catalogue entries; the message says which part and why."""


@dataclass(frozen=True)
class GptqRow:
    """One row of the card's "Provided files" table: a GPTQ branch and its parameters."""

    branch: str
    bits: int
    group_size: int | None
    act_order: bool
    damp_percent: float | None
    dataset: str | None
    dataset_url: str | None
    seq_len: int | None
    size_bytes: int
    exllama: bool
    made_with: str | None
    description: str


@dataclass(frozen=True)
class GgufRow:
    """One row of a GGUF card's "Provided files" table: what the card says about one file."""

    name: str
    max_ram_bytes: int | None
    description: str


@dataclass(frozen=True)
class CardPrompt:
    """The card's prompt format: its name ("ChatML") if given, and the text with ``{prompt}``."""

    name: str | None
    text: str


@dataclass(frozen=True)
class ModelCard:
    """What a card says about the model, parsed but not yet checked against the Hub."""

    front: dict[str, Any]
    title: str | None
    rows: tuple[GptqRow, ...]
    prompt: CardPrompt | None
    links: dict[str, str] = field(default_factory=dict)
    text: str = ""
    gguf_files: dict[str, GgufRow] = field(default_factory=dict)

    @property
    def has_table(self) -> bool:
        return bool(self.rows)


# Header cell (lower-cased, spaces collapsed) -> field, for both of TheBloke's layouts.
_COLUMNS = {
    "branch": "branch", "bits": "bits", "gs": "group_size", "group size": "group_size",
    "act order": "act_order", "act order (desc_act)": "act_order", "damp %": "damp_percent",
    "gptq dataset": "dataset", "seq len": "seq_len", "size": "size", "file size": "size",
    "exllama": "exllama", "exllama compatible?": "exllama", "made with": "made_with",
    "desc": "description", "description": "description",
}
_REQUIRED = ("branch", "bits", "group_size", "act_order", "size", "exllama", "description")
_HEADER = re.compile(r"\|\s*Branch\s*\|\s*Bits\s*\|[^\n]*", re.IGNORECASE)
_LINK = re.compile(r"^\[([^\]]*)\]\(([^)\s]*)\)$")
_SIZE = re.compile(r"^([\d.,]+)\s*([KMGT]i?B)$", re.IGNORECASE)
_UNITS = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_TRUE = {"yes", "true", "y"}
_FALSE = {"no", "false", "n"}


def parse_card(text: str) -> ModelCard:
    """Parse a card (README.md, front matter included); a malformed table row raises CardError."""
    front, body = _front_matter(text)
    return ModelCard(
        front=front,
        title=_title(body),
        rows=tuple(_table(body)),
        prompt=_prompt(body, front),
        links=_links(body),
        text=body,
        gguf_files=_gguf_table(body),
    )


# -- front matter ------------------------------------------------------------------
_FRONT_BLOCK = re.compile(r"(?m)^---[ \t]*\n(.*?)\n^---[ \t]*$", re.DOTALL)
_FLAT_FRONT = re.compile(r"^\s*---\s(.*?)\s---(?:\s|$)", re.DOTALL)
_FLAT_KEYS = ("license", "model_type", "model_name", "model_creator", "base_model", "pipeline_tag",
              "quantized_by", "model_link")


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    """The YAML front matter (found even after page chrome) and the text after it."""
    import yaml  # huggingface_hub's own dependency; only needed here

    for match in _FRONT_BLOCK.finditer(text[:200_000]):
        try:
            data = yaml.safe_load(match[1])
        except yaml.YAMLError:
            continue
        if isinstance(data, dict) and data:
            return data, text[match.end():]
    flat = _FLAT_FRONT.match(text)
    if flat:  # a card flattened onto one line: take the simple "key: value" pairs
        data = {}
        for key in _FLAT_KEYS:
            found = re.search(rf"(?:^|\s){key}:\s*(\S+)", flat[1])
            if found:
                data[key] = found[1]
        return data, text[flat.end():]
    return {}, text


def _title(body: str) -> str | None:
    match = re.search(r"(?m)^#\s+(.+?)\s*$", body)
    if not match:
        return None
    title = re.split(r"\s(?:##|These files|This repo)\s", match[1])[0].strip()
    return title[:120] or None


# -- the GPTQ branch table -----------------------------------------------------------
def _table_lines(body: str, start: int) -> tuple[list[str], bool]:
    """The table's lines from its header on, and whether it was flattened onto one line."""
    lines = body[start:].split("\n")
    if re.search(r"\|\s*-{3,}\s*\|", lines[0]):  # header, rule and rows on one line
        return [p if p.startswith("|") else "|" + p for p in re.split(r"\|\s+(?=\|)", lines[0])], True
    table = []
    for line in lines:
        if not line.strip().startswith("|"):
            break
        table.append(line.strip())
    return table, False


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") else inner
    return [c.strip() for c in inner.split("|")]


def _table(body: str) -> list[GptqRow]:
    header_match = _HEADER.search(body)
    if not header_match:
        return []
    lines, flattened = _table_lines(body, header_match.start())
    header = [re.sub(r"\s+", " ", c.lower()) for c in _cells(lines[0])]
    fields = [_COLUMNS.get(h) for h in header]
    missing = [f for f in _REQUIRED if f not in fields]
    if missing:
        raise CardError(f"the card's branch table has no {', '.join(missing)} column "
                        f"(its columns: {', '.join(_cells(lines[0]))})")
    rows: list[GptqRow] = []
    for line in lines[1:]:
        cells = _cells(line)
        if all(re.fullmatch(r":?-*:?", c) for c in cells):
            continue
        if flattened and len(cells) > len(header):
            cells = cells[:len(header)]  # the rest of a flattened card follows the last row
            rows.append(_row(dict(zip(fields, cells, strict=True)), len(rows) + 1))
            break
        if len(cells) != len(header):
            raise CardError(
                f"row {len(rows) + 1} of the card's branch table has {len(cells)} cells, the header has "
                f"{len(header)}: {line[:80]!r}"
            )
        rows.append(_row(dict(zip(fields, cells, strict=True)), len(rows) + 1))
    seen: set[str] = set()
    for row in rows:
        if row.branch in seen:
            raise CardError(f"branch {row.branch!r} appears twice in the card's branch table")
        seen.add(row.branch)
    return rows


def _link(cell: str) -> tuple[str, str | None]:
    match = _LINK.match(cell.strip())
    return (match[1].strip(), match[2] or None) if match else (cell.strip(), None)


def _row(cells: dict[str | None, str], number: int) -> GptqRow:
    branch = _link(cells["branch"])[0].strip("`")
    where = f"row {number} of the card's branch table ({branch or 'no branch'})"
    if not branch or " " in branch:
        raise CardError(f"{where}: {cells['branch']!r} is not a branch name")

    def number_of(key: str, kind: type, none_ok: bool = False) -> Any:
        raw = cells.get(key, "").strip()
        if none_ok and raw.lower() in ("none", "-1", "", "-", "n/a"):
            return None
        try:
            return kind(raw)
        except ValueError:
            raise CardError(f"{where}: {key.replace('_', ' ')} is {raw!r}, not a number") from None

    def flag(key: str) -> bool:
        raw = cells.get(key, "").strip().lower()
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise CardError(f"{where}: {key.replace('_', ' ')} is {cells.get(key)!r}, not yes or no")

    bits = number_of("bits", int)
    if bits not in (2, 3, 4, 8):
        raise CardError(f"{where}: {bits} bits is not a GPTQ width (2, 3, 4 or 8)")
    group = number_of("group_size", int, none_ok=True)
    dataset, dataset_url = _link(cells["dataset"]) if "dataset" in cells else (None, None)
    size_text = cells["size"].strip()
    size = _SIZE.match(size_text)
    if not size:
        raise CardError(f"{where}: size is {size_text!r}, not like '7.26 GB'")
    made_with = cells.get("made_with", "").strip() or None
    return GptqRow(
        branch=branch,
        bits=bits,
        group_size=group if group and group > 0 else None,
        act_order=flag("act_order"),
        damp_percent=number_of("damp_percent", float, none_ok=True) if "damp_percent" in cells else None,
        dataset=dataset or None,
        dataset_url=dataset_url,
        seq_len=number_of("seq_len", int, none_ok=True) if "seq_len" in cells else None,
        size_bytes=round(float(size[1].replace(",", "")) * _UNITS[size[2].lower()]),
        exllama=flag("exllama"),
        made_with=made_with,
        description=cells["description"].strip(),
    )


# -- a GGUF card's file table (Name | Quant method | Bits | Size | Max RAM required | Use case) ------
_GGUF_HEADER = re.compile(r"\|\s*Name\s*\|\s*Quant method\s*\|[^\n]*", re.IGNORECASE)


def _gguf_table(body: str) -> dict[str, GgufRow]:
    """File name -> the card's max RAM and use case; rows that do not parse are left out (hints only)."""
    match = _GGUF_HEADER.search(body)
    if not match:
        return {}
    lines, _flattened = _table_lines(body, match.start())
    header = [re.sub(r"\s+", " ", c.lower()) for c in _cells(lines[0])]
    try:
        name_at, ram_at, use_at = header.index("name"), header.index("max ram required"), header.index("use case")
    except ValueError:
        return {}
    rows: dict[str, GgufRow] = {}
    for line in lines[1:]:
        cells = _cells(line)
        if len(cells) != len(header) or all(re.fullmatch(r":?-*:?", c) for c in cells):
            continue
        name = _link(cells[name_at])[0].strip("`")
        ram = _SIZE.match(cells[ram_at].strip())
        ram_bytes = round(float(ram[1].replace(",", "")) * _UNITS[ram[2].lower()]) if ram else None
        rows[name] = GgufRow(name, ram_bytes, cells[use_at].strip())
    return rows


# -- the prompt block -----------------------------------------------------------------
_PROMPT = re.compile(
    r"#+[ \t]*Prompt template:[ \t]*([^\n`]*?)\s*```[\w+-]*[ \t]*\n?(.*?)```", re.DOTALL | re.IGNORECASE
)


def _prompt(body: str, front: dict[str, Any]) -> CardPrompt | None:
    match = _PROMPT.search(body)
    if match:
        text = match[2]
        # The line break before the closing fence is the card's; a flattened card has the block on one line.
        text = text.removesuffix("\n") if "\n" in text else text.strip()
        return CardPrompt(name=match[1].strip() or None, text=text)
    template = front.get("prompt_template")
    if isinstance(template, str) and "{prompt}" in template:
        return CardPrompt(name=None, text=template)
    return None


# -- "Repositories available" -----------------------------------------------------------
_REPO_LINK = re.compile(r"\[([^\]]+)\]\(https?://(?:www\.)?(?:huggingface\.co|hf\.co)/([\w.-]+/[\w.-]+)/?\)")


def _links(body: str) -> dict[str, str]:
    """Linked repos by kind (gguf, ggml, gptq, awq, original) from the "Repositories available" list."""
    start = re.search(r"Repositories available", body)
    if not start:
        return {}
    section = body[start.end():start.end() + 3000]
    end = re.search(r"(?m)(^#|\s##\s)", section)
    section = section[:end.start()] if end else section
    links: dict[str, str] = {}
    for label, repo in _REPO_LINK.findall(section):
        words = f"{label} {repo}".lower()
        for kind in ("gguf", "ggml", "gptq", "awq", "exl2"):
            if kind in words:
                links.setdefault(kind, repo)
                break
        else:
            if "unquantised" in words or "original" in words or "fp16" in words:
                links.setdefault("original", repo)
    return links
