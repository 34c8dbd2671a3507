"""Repo refs, branch and file listings against the loopback Hub, and the error messages users see."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download

from app.hub.errors import AccessDenied, EntryNotFound, RepoNotFound, RevisionNotFound
from app.hub.listing import list_branches, list_files
from app.hub.refs import BadRepoRef, RepoRef, parse_repo_ref
from tests.hub.conftest import GGUF_REPO, GPTQ_REPO, payload
from tests.hub.hub_server import HubServer


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
