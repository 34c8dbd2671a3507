"""``hearth catalog``: the model catalogue as a table or as JSON, with filters."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.catalog import Catalog, Model, Variant, load_catalog
from app.catalog.fit import Fit, assess
from app.catalog.hardware import Hardware, describe, detect_hardware
from app.cli.table import render_table
from app.cli.terminal import safe_json, safe_line
from app.errors import HearthError
from app.units import human_size


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "catalog",
        help="list the model catalogue",
        description="List every model variant in the catalogue: GGUF quants that Hearth runs "
        "with llama.cpp, and GPTQ branches (download only).",
    )
    parser.add_argument("--json", action="store_true", help="print the resolved catalogue as JSON")
    parser.add_argument("--format", choices=("gguf", "gptq"), help="only variants of this format")
    parser.add_argument(
        "--fits", action="store_true",
        help="only variants that run on this machine's RAM/VRAM (fits or tight)",
    )
    parser.add_argument(
        "--hardware", metavar="ram=SIZE[,vram=SIZE]",
        help="judge --fits against described hardware instead of this machine",
    )
    parser.add_argument("--model", metavar="ID", help="only this model")
    parser.set_defaults(func=run)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    add = actions.add_parser(
        "add", help="import a Hub repo (TheBloke-style card or GGUF repo) into your catalogue",
        description="Read a repo's model card, branches and files on the Hub (GGUF headers by HTTP Range, "
        "no download) and add the model to your own catalogue in Hearth's data folder.",
    )
    add.add_argument("repo", metavar="REPO", help="OWNER/NAME, OWNER/NAME:QUANT or a huggingface.co URL")
    add.add_argument("--json", action="store_true", help="print the new model as `hearth catalog --json` does")
    add.add_argument("--hardware", metavar="ram=SIZE[,vram=SIZE]",
                     help="judge the fit against described hardware instead of this machine")
    add.set_defaults(func=run_add)
    remove = actions.add_parser("remove", help="take an imported model out of your catalogue")
    remove.add_argument("model_id", metavar="ID", help="the model's id (see `hearth catalog`)")
    remove.set_defaults(func=run_remove)


def _hardware(args: argparse.Namespace) -> Hardware:
    if args.hardware:
        try:
            return describe(args.hardware)
        except ValueError as exc:
            raise HearthError(str(exc)) from None
    return detect_hardware()


def select(catalog: Catalog, args: argparse.Namespace, hw: Hardware) -> list[tuple[Model, list[Variant]]]:
    """Models with the variants that pass the filters, models with none left out."""
    if args.model and args.model not in {m.id for m in catalog.models}:
        known = ", ".join(m.id for m in catalog.models)
        raise HearthError(f"no model {args.model!r} in the catalogue (known: {known})")
    chosen = []
    for model in catalog.models:
        if args.model and model.id != args.model:
            continue
        variants = [
            v for v in model.variants
            if (not args.format or v.format == args.format)
            and (not args.fits or assess(v, hw, parameters=model.parameters).fit is not Fit.NO)
        ]
        if variants:
            chosen.append((model, variants))
    return chosen


def run_add(args: argparse.Namespace) -> int:
    from app.catalog.card_import import commit_import, plan_import

    quiet = args.json
    plan = plan_import(args.repo, progress=None if quiet else lambda m: print(m, file=sys.stderr))
    commit_import(plan)
    catalog = load_catalog()
    model = catalog.model(plan.model["id"])
    hw = _hardware(args)
    if args.json:
        print(json.dumps(_model_json(model, list(model.variants), hw), indent=2, ensure_ascii=False))
        return 0
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    formats = ", ".join(f"{sum(1 for v in model.variants if v.format == f)} {f.upper()}"
                        for f in ("gguf", "gptq") if any(v.format == f for v in model.variants))
    template_origin = "from the model card" if model.template.id.endswith("-card") else (
        "from the GGUF file" if model.template.id.endswith("-gguf") else "Hearth's own")
    print(f"Added {model.name} as {model.id}: {formats} variants · template {model.template.name} "
          f"({template_origin}) · context {model.context_length:,} tokens")
    if plan.header_bytes:
        print(f"Read the GGUF header with {human_size(plan.header_bytes)} of Range requests, nothing downloaded.")
    print(f"See it with `hearth catalog --model {model.id}`; remove it with `hearth catalog remove {model.id}`.")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from app.catalog.card_import import remove_model

    repo = remove_model(args.model_id)
    print(f"Removed {args.model_id} ({repo}) from your catalogue. Downloaded files, if any, are kept.")
    return 0


def _model_json(model: Model, variants: list[Variant], hw: Hardware) -> dict[str, Any]:
    return {**model.to_json(), "variants": [_variant_json(v, hw, model.parameters) for v in variants]}


def run(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    for problem in catalog.problems:
        print(f"hearth: warning: {problem}", file=sys.stderr)
    hw = _hardware(args)
    chosen = select(catalog, args, hw)
    if args.json:
        document = {
            "schema_version": catalog.schema_version,
            "models": [_model_json(model, variants, hw) for model, variants in chosen],
        }
        print(safe_json(json.dumps(document, indent=2, ensure_ascii=False)))
        return 0
    if not chosen:
        print("No variants match these filters.")
        return 0
    rows = []
    for model, variants in chosen:
        for v in variants:
            report = assess(v, hw, parameters=model.parameters)
            rows.append([
                model.id,
                v.format.upper(),
                v.quant or v.revision,
                str(v.bits),
                "-" if v.format == "gguf" else ("None" if v.group_size is None else str(v.group_size)),
                "-" if v.act_order is None else ("yes" if v.act_order else "no"),
                human_size(v.size_bytes),
                report.fit.value,
                "chat" if v.runnable else "convert",
            ])
    headers = ["MODEL", "FORMAT", "QUANT / BRANCH", "BITS", "GROUP", "ACT ORDER", "SIZE", "FIT", "USE"]
    print(render_table(headers, rows, right={3, 4, 6}))
    print("\n" + safe_line(f"{len(rows)} variants of {len(chosen)} models · this machine: {hw.summary()}"))
    imported = [m.id for m, _ in chosen if m.imported]
    if imported:
        print(safe_line(f"Imported by you: {', '.join(imported)} (`hearth catalog remove ID` takes one out)"))
    if any(v.format == "gptq" for _, vs in chosen for v in vs):
        print("GPTQ branches do not run in llama.cpp as they are: `hearth convert VARIANT_ID` turns one into "
              "a GGUF (e.g. mistral-7b-openorca:gptq:main), or pick a GGUF quant.")
    return 0


def _variant_json(variant: Variant, hw: Hardware, parameters: int) -> dict[str, Any]:
    report = assess(variant, hw, parameters=parameters)
    return {**variant.to_json(), "fit": report.fit.value, "memory_needed_bytes": report.need_bytes}
