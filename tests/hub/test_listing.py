"""Repo refs, branch and file listings against the loopback Hub, and the error messages users see."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download

from app.hub import listing
from app.hub.errors import AccessDenied, EntryNotFound, HubTimeout, RepoNotFound, RevisionNotFound
from app.hub.listing import list_branches, list_files
from app.hub.refs import BadRepoRef, RepoRef, parse_repo_ref
from tests.hub.conftest import GGUF_REPO, GPTQ_REPO, payload
from tests.hub.hub_server import Fault, HubServer


@pytest.mark.parametrize(("text", "expected"), [
    ("TheBloke/Llama-2-13B-chat-GPTQ", RepoRef("TheBloke/Llama-2-13B-chat-GPTQ")),
    ("TheBloke/Llama-2-13B-chat-GPTQ:gptq-4bit-32g-actorder_True",
     RepoRef("TheBloke/Llama-2-13B-chat-GPTQ", "gptq-4bit-32g-actorder_True")),
    ("https://huggingface.co/TheBloke/Llama-2-13B-chat-GPTQ/tree/gptq-4bit-32g-actorder_True",
     RepoRef("TheBloke/Llama-2-13B-chat-GPTQ", "gptq-4bit-32g-actorder_True")),
    ("https://huggingface.co/TheBloke/Llama-2-13B-chat-GGUF", RepoRef("TheBloke/Llama-2-13B-chat-GGUF")),
    ("huggingface.co/TheBloke/X-GGUF/blob/main/x.Q4_K_M.gguf", RepoRef("TheBloke/X-GGUF", "main", "x.Q4_K_M.gguf")),
    ("  gpt2  ", RepoRef("gpt2")),
])
def test_parse_repo_ref(text: str, expected: RepoRef) -> None:
    assert parse_repo_ref(text) == expected


@pytest.mark.parametrize("text", ["", "a/b/c", "owner/name:", "https://huggingface.co/owner", "../etc", "a b/c"])
def test_parse_repo_ref_rejects(text: str) -> None:
    with pytest.raises(BadRepoRef):
        parse_repo_ref(text)


def test_huggingface_hub_itself_downloads_from_the_loopback_hub(hub: HubServer, tmp_path: Path) -> None:
    """The server speaks the protocol the real client expects (HEAD metadata, etags, commit)."""
    path = hf_hub_download(GPTQ_REPO, "model.safetensors", revision="gptq-4bit-32g-actorder_True",
                           cache_dir=tmp_path, endpoint=hub.url)
    assert Path(path).read_bytes() == payload(450_000, 8)
    refs = HfApi(endpoint=hub.url).list_repo_refs(GPTQ_REPO)
    assert {b.name for b in refs.branches} == {"main", "gptq-4bit-32g-actorder_True"}
    info = HfApi(endpoint=hub.url).get_paths_info(GPTQ_REPO, ["config.json"], revision="main")
    assert info[0].path == "config.json"


def test_branches_main_first(hub: HubServer) -> None:
    names = [b.name for b in list_branches(GPTQ_REPO)]
    assert names == ["main", "gptq-4bit-32g-actorder_True"]


def test_list_files_of_a_branch_with_sizes_and_sha256(hub: HubServer) -> None:
    listing = list_files(GPTQ_REPO, "gptq-4bit-32g-actorder_True")
    files = {f.path: f for f in listing.files}
    assert set(files) == {"config.json", "quantize_config.json", "model.safetensors", "tokenizer.json"}
    weights = files["model.safetensors"]
    assert weights.size == 450_000
    assert weights.sha256 == hashlib.sha256(payload(450_000, 8)).hexdigest()
    assert files["config.json"].sha256 is None and files["config.json"].blob_id
    assert listing.commit == hub.repos[GPTQ_REPO].commits["gptq-4bit-32g-actorder_True"]


def test_select_globs(hub: HubServer) -> None:
    listing = list_files(GGUF_REPO)
    assert [f.path for f in listing.select(["*Q4_K_M*"])] == ["tiny.Q4_K_M.gguf"]
    with pytest.raises(EntryNotFound, match=r"no file"):
        listing.select(["*Q5*"])


def test_bad_branch_says_so(hub: HubServer) -> None:
    with pytest.raises(RevisionNotFound, match=r"branch 'gptq-9bit' was not found in TheBloke/Tiny-GPTQ"):
        list_files(GPTQ_REPO, "gptq-9bit")


def test_unknown_repo_says_so(hub: HubServer) -> None:
    with pytest.raises(RepoNotFound, match=r"'nobody/nothing' was not found.*token"):
        list_files("nobody/nothing")


def test_gated_repo_explains_the_token(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.add_repo("meta/gated", {"main": {"x.gguf": b"GGUF1234"}}, gated=True, tokens={"hf_secret"})
    with pytest.raises(AccessDenied, match=r"gated.*HF_TOKEN"):
        list_files("meta/gated")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    assert [f.path for f in list_files("meta/gated").files] == ["x.gguf"]


@pytest.fixture
def short_listing_deadline(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(listing, "LISTING_TIMEOUT_S", 1.0)
    return 1.0


@pytest.mark.parametrize("route", ["api/tree", "api/revision"])
def test_stalled_file_listing_times_out_clearly(hub: HubServer, short_listing_deadline: float, route: str) -> None:
    hub.inject(Fault("stall", path=route, seconds=30))
    started = time.monotonic()
    with pytest.raises(HubTimeout, match=r"the Hub did not answer in 1 s while listing the files of "
                                         r"TheBloke/Tiny-GPTQ:main"):
        list_files(GPTQ_REPO)
    assert time.monotonic() - started < 3
    assert list_files(GPTQ_REPO).files  # the fault was one-off: the Hub answers again


def test_stalled_branch_listing_times_out_clearly(hub: HubServer, short_listing_deadline: float) -> None:
    hub.inject(Fault("stall", path="api/refs", seconds=30))
    started = time.monotonic()
    with pytest.raises(HubTimeout, match=r"did not answer in 1 s while listing the branches of TheBloke/Tiny-GPTQ"):
        list_branches(GPTQ_REPO)
    assert time.monotonic() - started < 3


def test_listing_error_status_is_reported(hub: HubServer) -> None:
    hub.inject(Fault("status", path="api/tree", status=401, error_code="GatedRepo", times=None))
    with pytest.raises(AccessDenied, match=r"gated.*HF_TOKEN"):
        list_files(GGUF_REPO)


def test_shared_client_gets_timeouts(hub: HubServer) -> None:
    """huggingface_hub's client waits forever unless told otherwise; Hearth gives it timeouts once."""
    from app.hub import session

    assert session.client().timeout.read == session.REQUEST_TIMEOUT.read


def test_cli_list_reports_a_stalled_hub(hub: HubServer, short_listing_deadline: float,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from app.__main__ import main

    hub.inject(Fault("stall", path="api/refs", seconds=30))
    assert main(["download", "--list", GGUF_REPO]) == 1
    err = capsys.readouterr().err
    assert "hearth: error: the Hub did not answer in 1 s" in err and "Traceback" not in err
