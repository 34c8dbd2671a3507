"""``hearth catalog``: the table, the JSON document, and the filters, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def hearth(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )


def catalog_json(*args: str) -> dict[str, Any]:
    result = hearth("catalog", "--json", *args)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_table_lists_every_variant_with_readable_columns() -> None:
    result = hearth("catalog")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["MODEL", "FORMAT", "QUANT", "/", "BRANCH", "BITS", "GROUP", "ACT", "ORDER",
                                "SIZE", "FIT", "USE"]
    row = next(line for line in lines if "gptq-8bit--1g-actorder_True" in line and "mistral" in line)
    assert row.split()[1:6] == ["GPTQ", "gptq-8bit--1g-actorder_True", "8", "None", "yes"]
    assert "7.52 GB" in row and row.endswith("convert")
    assert "hearth convert VARIANT_ID" in result.stdout
    assert "variants of 6 models" in result.stdout


def test_json_has_the_documented_shape() -> None:
    document = catalog_json()
    models = {m["id"]: m for m in document["models"]}
    assert len(models) == 6
    beluga = models["stablebeluga2-70b"]
    assert beluga["template"] == "orca-hashes"
    assert beluga["system_message"].startswith("You are Stable Beluga")
    variant = next(v for v in beluga["variants"] if v["revision"] == "gptq-3bit--1g-actorder_True")
    for key in ("repo", "revision", "format", "files", "bits", "group_size", "act_order", "size_bytes"):
        assert key in variant
    assert (variant["format"], variant["bits"], variant["group_size"], variant["act_order"]) == ("gptq", 3, None, True)
    gguf = next(v for v in beluga["variants"] if v.get("quant") == "Q4_K_M")
    assert gguf["files"] == ["stablebeluga2-70b.Q4_K_M.gguf"] and gguf["revision"] == "main"


def test_format_filter() -> None:
    document = catalog_json("--format", "gptq")
    formats = {v["format"] for m in document["models"] for v in m["variants"]}
    assert formats == {"gptq"}
    assert "smollm2-135m-instruct" not in {m["id"] for m in document["models"]}


@pytest.mark.parametrize(
    ("hardware", "expect_70b_q2", "expect_70b_gptq"),
    [("ram=8GB", False, False), ("ram=16GB", False, False), ("ram=64GB", True, True),
     ("ram=16GB,vram=48GB", True, True)],
)
def test_fits_filter_follows_the_hardware(hardware: str, expect_70b_q2: bool, expect_70b_gptq: bool) -> None:
    document = catalog_json("--fits", "--hardware", hardware)
    ids = {v["id"] for m in document["models"] for v in m["variants"]}
    assert "smollm2-135m-instruct:gguf:Q4_1" in ids
    assert ("stablebeluga2-70b:gguf:Q2_K" in ids) is expect_70b_q2
    assert ("stablebeluga2-70b:gptq:main" in ids) is expect_70b_gptq
    for model in document["models"]:
        assert all(v["fit"] in ("fits", "tight") for v in model["variants"])


def test_fits_uses_this_machine_when_not_described() -> None:
    # HEARTH_HARDWARE stands in for the machine at the lowest layer (hardware detection).
    result = hearth("catalog", "--json", "--fits", env={"HEARTH_HARDWARE": "ram=2GB"})
    document = json.loads(result.stdout)
    assert [m["id"] for m in document["models"]] == ["smollm2-135m-instruct"]


def test_bad_catalogue_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "models_catalog.json"
    bad.write_text("{ not json", encoding="utf-8")
    result = hearth("catalog", env={"HEARTH_CATALOG": str(bad)})
    assert result.returncode == 1
    assert result.stderr.startswith("hearth: error: the model catalogue")
    assert str(bad) in result.stderr and "Traceback" not in result.stderr


def test_bad_hardware_description() -> None:
    result = hearth("catalog", "--fits", "--hardware", "lots")
    assert result.returncode == 1 and "ram=SIZE" in result.stderr


def test_unknown_model_filter() -> None:
    result = hearth("catalog", "--model", "gpt-5")
    assert result.returncode == 1 and "no model 'gpt-5'" in result.stderr
