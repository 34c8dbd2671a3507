"""``hearth convert REPO:BRANCH`` as a subprocess against the loopback Hub: download, convert, record, load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gguf
import pytest

from app.catalog import load_catalog
from app.catalog.installed import converted_model, converted_output, read_conversion
from app.convert.requantize import FTYPES
from app.engine.chat_format import match_catalogue, resolve_chat_format
from app.paths import app_dirs, install_root, variant_dir
from tests.convert.tiny_gptq import CHAT_TEMPLATE, GptqConfig, build_checkpoint
from tests.hub.conftest import running_hub, use_quick_transfers
from tests.hub.hub_server import Fault, HubServer

VARIANT_ID = "mistral-7b-openorca:gptq:gptq-4bit-32g-actorder_True"
PLAIN_REPO = "someone/Tiny-Llama-GPTQ"
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def quick_transfers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from use_quick_transfers(monkeypatch)


def branch_files(folder: Path) -> dict[str, bytes | Path]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tokenizer_model: bytes) -> Iterator[HubServer]:
    """The loopback Hub serving a tiny 4-bit branch as the catalogue's Mistral GPTQ branch, and an 8-bit
    one in a repo the catalogue does not know."""
    _, variant = load_catalog().variant(VARIANT_ID)
    four = build_checkpoint(tmp_path / "src4", tokenizer_model, GptqConfig(4, 32, True, False, "gptq"), shards=2)
    eight = build_checkpoint(tmp_path / "src8", tokenizer_model, GptqConfig(8, 128, False, True, "gptq_v2"))
    for server in running_hub(monkeypatch):
        server.add_repo(variant.repo, {"main": {"README.md": b"# main\n"}, variant.revision: branch_files(four.folder)})
        server.add_repo(PLAIN_REPO, {"main": branch_files(eight.folder)})
        yield server


def hearth(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=install_root(), env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)


def test_catalogue_variant_is_downloaded_converted_recorded_and_loads(hub: HubServer, load_llama) -> None:
    catalog = load_catalog()
    model, variant = catalog.variant(VARIANT_ID)
    models = app_dirs().models
    # The connection drops twice mid-shard: the download resumes with Range requests, nothing is fetched twice.
    drops = hub.inject(Fault("drop", path="model-00001-of-00002.safetensors", after=100_000, times=2))

    result = hearth("convert", VARIANT_ID)

    assert result.returncode == 0, result.stderr
    # A permuted act-order branch: requantised to the 4-bit type measured closest to the exact F16 model.
    chosen = Path(result.stdout.strip()).name.split(".")[-2].lower()
    assert chosen in ("q4_k_m", "q4_k_s", "iq4_nl")
    expected = converted_output(variant_dir(models, variant.repo, variant.revision), chosen)
    assert result.stdout.strip() == str(expected)
    assert f"Mode: requantised to {chosen.upper()} (from act-order groups)" in result.stderr
    assert "Quality against the exact F16 model" in result.stderr and f"Chosen: {chosen.upper()}:" in result.stderr
    assert "verified" in result.stderr and "converting: 100.0%" in result.stderr
    shard = hub.repos[variant.repo].branches[variant.revision]["model-00001-of-00002.safetensors"]
    assert drops.hits == 2 and hub.bytes_served["model-00001-of-00002.safetensors"] == shard.size

    record = json.loads(expected.with_name(expected.name + ".json").read_text())
    assert record["repo"] == variant.repo and record["branch"] == variant.revision
    assert record["commit"] == hub.repos[variant.repo].commits[variant.revision]
    assert record["out_type"] == chosen and record["variant_id"] == VARIANT_ID and record["template"] == "chatml"
    assert record["mode"] == f"requantised to {chosen.upper()} (from act-order groups)"
    assert 0 <= record["quality"]["kl_mean"] < 0.1 and record["quality"]["tokens"] > 100
    assert record["gptq"] == "4-bit GPTQ, group 32, act order"

    conversion = converted_model(models, variant)
    assert conversion is not None and conversion.path == expected
    assert conversion.detail == f"{chosen.upper()} · converted from GPTQ gptq-4bit-32g-actorder_True"
    assert match_catalogue(expected, catalog, models) == (model, variant)
    chat_format = resolve_chat_format(expected, catalog, models_dir=models)
    assert chat_format.source == "catalogue" and chat_format.template.id == "chatml"

    reader = gguf.GGUFReader(expected)
    assert reader.fields["tokenizer.chat_template"].contents() == catalog.templates["chatml"].jinja
    assert reader.fields["general.file_type"].contents() == FTYPES[chosen]
    llm = load_llama(expected)
    tokens = llm.tokenize(b"The quick brown fox", add_bos=True)
    llm.eval(tokens)
    assert len(tokens) > 2 and len(llm.scores[len(tokens) - 1]) == 400

    # Again: the verified branch is not fetched twice and the result is rewritten in place.
    hub.reset_counts()
    again = hearth("convert", f"{variant.repo}:{variant.revision}", "--type", "q8_0")
    assert again.returncode == 0, again.stderr
    assert not any(name.endswith(".safetensors") for name in hub.bytes_served)
    q8 = read_conversion(Path(again.stdout.strip()))
    assert q8 is not None and q8.out_type == "q8_0" and q8.variant_id == VARIANT_ID


def test_any_hub_branch_converts_with_its_own_template(hub: HubServer, load_llama) -> None:
    result = hearth("convert", PLAIN_REPO)
    assert result.returncode == 0, result.stderr
    out = Path(result.stdout.strip())
    assert out == converted_output(variant_dir(app_dirs().models, PLAIN_REPO, "main"), "q8_0")
    conversion = read_conversion(out)
    assert conversion is not None
    assert (conversion.repo, conversion.branch, conversion.variant_id, conversion.template) == (
        PLAIN_REPO, "main", None, None)
    assert conversion.mode == "exact GPTQ weights"  # symmetric 8-bit: the GPTQ codes as Q8_0 blocks
    assert conversion.quality is not None and conversion.quality.top1 > 0.9
    assert gguf.GGUFReader(out).fields["tokenizer.chat_template"].contents() == CHAT_TEMPLATE
    assert match_catalogue(out, load_catalog(), app_dirs().models) is None
    load_llama(out, vocab_only=True)


def test_bad_targets_are_one_line_errors(hub: HubServer) -> None:
    for args, message in [
        (("mistral-7b-openorca:gguf:Q4_K_M",), "is already a GGUF that llama.cpp runs"),
        ((f"{PLAIN_REPO}:no-such-branch",), "branch 'no-such-branch' was not found"),
        (("mistral-7b-openorca:gptq:nope",), "is not a catalogue variant"),
    ]:
        result = hearth("convert", *args)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("hearth: error: ") and message in lines[-1], result.stderr
        assert "Traceback" not in result.stderr
    models = app_dirs().models
    assert not models.exists() or not list(models.rglob("*.gguf"))
