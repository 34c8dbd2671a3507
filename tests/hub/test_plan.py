"""Whole downloads: branches into separate folders, split parts joined, shards kept, install states."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from app.catalog.installed import InstallState, install_state
from app.catalog.model import Variant
from app.hub import manifest, split
from app.hub.errors import NotEnoughSpace
from app.hub.plan import DownloadRequest, execute, plan, request_for_variant
from app.hub.transfer import Control, partial_path
from app.paths import variant_dir
from tests.hub.conftest import GGUF_REPO, GPTQ_REPO, gguf_payload, payload
from tests.hub.hub_server import Fault, HubServer


def _variant(**changes: object) -> Variant:
    base = Variant(model_id="tiny", repo=GGUF_REPO, revision="main", format="gguf", bits=4, size_bytes=300_000,
                   files=("tiny.Q4_K_M.gguf",), quant="Q4_K_M")
    return replace(base, **changes)  # type: ignore[arg-type]


def _run(request: DownloadRequest, models_dir: Path) -> list[Path]:
    return execute(plan(request, models_dir), Control(), lambda n: None)


def test_two_branches_never_share_a_folder(hub: HubServer, models_dir: Path) -> None:
    main = _run(DownloadRequest(GPTQ_REPO, "main"), models_dir)
    other = _run(DownloadRequest(GPTQ_REPO, "gptq-4bit-32g-actorder_True"), models_dir)
    main_dir = variant_dir(models_dir, GPTQ_REPO, "main")
    other_dir = variant_dir(models_dir, GPTQ_REPO, "gptq-4bit-32g-actorder_True")
    assert main_dir != other_dir
    assert sorted(p.name for p in main) == ["config.json", "model.safetensors", "quantize_config.json",
                                           "tokenizer.json"]
    assert (main_dir / "config.json").read_bytes() != (other_dir / "config.json").read_bytes()
    assert (other_dir / "model.safetensors").read_bytes() == payload(450_000, 8)
    assert all(p.parent == other_dir for p in other)
    gptq = _variant(format="gptq", repo=GPTQ_REPO, revision="gptq-4bit-32g-actorder_True", files=(), quant=None)
    assert install_state(models_dir, gptq) is InstallState.INSTALLED


def test_split_parts_are_joined_and_verified(hub: HubServer, models_dir: Path) -> None:
    variant = _variant(files=("big.Q6_K.gguf-split-a", "big.Q6_K.gguf-split-b"), join_to="big.Q6_K.gguf",
                       quant="Q6_K", size_bytes=350_000)
    assert install_state(models_dir, variant) is InstallState.NOT_INSTALLED
    paths = _run(request_for_variant(variant), models_dir)
    folder = variant_dir(models_dir, GGUF_REPO, "main")
    assert paths == [folder / "big.Q6_K.gguf"]
    joined = gguf_payload(200_000, 3) + payload(150_000, 4)
    assert paths[0].read_bytes() == joined
    assert not (folder / "big.Q6_K.gguf-split-a").exists()  # parts removed once joined
    entry = manifest.verified_entry(folder, "big.Q6_K.gguf")
    assert entry is not None and entry["checksum"] == hashlib.sha256(joined).hexdigest()
    assert install_state(models_dir, variant) is InstallState.INSTALLED
    hub.reset_counts()
    _run(request_for_variant(variant), models_dir)  # again: nothing fetched
    assert sum(hub.bytes_served.values()) == 0


def test_a_glob_on_one_part_brings_the_others(hub: HubServer, models_dir: Path) -> None:
    paths = _run(DownloadRequest(GGUF_REPO, includes=("big.Q6_K.gguf-split-a",)), models_dir)
    assert [p.name for p in paths] == ["big.Q6_K.gguf"]
    paths = _run(DownloadRequest(GGUF_REPO, includes=("shard-00002-*",)), models_dir)
    assert sorted(p.name for p in paths) == ["shard-00001-of-00002.gguf", "shard-00002-of-00002.gguf"]


def test_sharded_variant_is_installed_only_with_every_shard(hub: HubServer, models_dir: Path) -> None:
    variant = _variant(files=("shard-00001-of-00002.gguf", "shard-00002-of-00002.gguf"), quant="Q4_0")
    _run(request_for_variant(variant), models_dir)
    assert install_state(models_dir, variant) is InstallState.INSTALLED
    folder = variant_dir(models_dir, GGUF_REPO, "main")
    (folder / "shard-00002-of-00002.gguf").unlink()
    assert install_state(models_dir, variant) is InstallState.PARTIAL


def test_install_state_needs_verification(hub: HubServer, models_dir: Path) -> None:
    variant = _variant()
    folder = variant_dir(models_dir, GGUF_REPO, "main")
    folder.mkdir(parents=True)
    partial_path(folder / "tiny.Q4_K_M.gguf").write_bytes(b"GGUF")
    assert install_state(models_dir, variant) is InstallState.PARTIAL
    (folder / "tiny.Q4_K_M.gguf").write_bytes(gguf_payload(300_000, 1))  # right bytes, never verified
    partial_path(folder / "tiny.Q4_K_M.gguf").unlink()
    assert install_state(models_dir, variant) is InstallState.PARTIAL
    _run(request_for_variant(variant), models_dir)  # hashes what is there once, fetches nothing
    assert hub.bytes_served["tiny.Q4_K_M.gguf"] == 0
    assert install_state(models_dir, variant) is InstallState.INSTALLED
    with (folder / "tiny.Q4_K_M.gguf").open("r+b") as f:  # changed after verification
        f.seek(100)
        f.write(b"XXXX")
    assert install_state(models_dir, variant) is InstallState.PARTIAL


def test_failed_part_leaves_the_variant_partial(hub: HubServer, models_dir: Path) -> None:
    variant = _variant(files=("big.Q6_K.gguf-split-a", "big.Q6_K.gguf-split-b"), join_to="big.Q6_K.gguf")
    # Twice: a mismatch on the socket fast path is fetched once more through httpx2.
    hub.inject(Fault("corrupt", path="big.Q6_K.gguf-split-b", after=10, times=2))
    with pytest.raises(Exception, match=r"corrupted"):
        _run(request_for_variant(variant), models_dir)
    assert install_state(models_dir, variant) is InstallState.PARTIAL
    assert not (variant_dir(models_dir, GGUF_REPO, "main") / "big.Q6_K.gguf").exists()


def test_space_for_the_whole_plan_is_checked_first(hub: HubServer, models_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_FAKE_FREE_BYTES", "500000")
    with pytest.raises(NotEnoughSpace, match=r"needs 7"):  # 350 kB of parts + 350 kB to join them
        _run(DownloadRequest(GGUF_REPO, includes=("big.*",)), models_dir)
    assert sum(hub.bytes_served.values()) == 0


def test_split_names() -> None:
    assert split.split_target("x.Q6_K.gguf-split-b") == "x.Q6_K.gguf"
    assert split.split_target("x.gguf") is None
    assert split.missing_shards(["m-00001-of-00003.gguf"]) == ["m-00002-of-00003.gguf", "m-00003-of-00003.gguf"]
    assert split.join_groups(["a.gguf-split-b", "a.gguf-split-a"]) == {"a.gguf": ["a.gguf-split-a", "a.gguf-split-b"]}
