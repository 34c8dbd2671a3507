"""``hearth search`` against the loopback Hub's /api/models, offline, and with no Hub at all."""

from __future__ import annotations

import json
import socket

import pytest

from app.cli import main
from app.hub.search import search_models
from tests.hub.hub_server import HubServer


@pytest.fixture
def searchable(hub: HubServer) -> HubServer:
    hub.add_repo("TheBloke/Mistral-7B-OpenOrca-GGUF", {"main": {"m.Q4_K_M.gguf": b"GGUF"}})
    hub.add_repo("TheBloke/Mistral-7B-OpenOrca-GPTQ", {"main": {"quantize_config.json": b"{}"}})
    hub.add_repo("TheBloke/Mistral-7B-OpenOrca-AWQ", {"main": {"model.safetensors": b"\0"}})
    hub.add_repo("other/Llama-GGUF", {"main": {"l.Q4_0.gguf": b"GGUF"}})
    hub.add_repo("secret/Mistral-Private-GGUF", {"main": {"x.gguf": b"GGUF"}}, private=True)
    hub.search_info.update({
        "TheBloke/Mistral-7B-OpenOrca-GGUF": {"downloads": 120_000, "likes": 250,
                                              "lastModified": "2023-10-02T10:00:00.000Z"},
        "TheBloke/Mistral-7B-OpenOrca-GPTQ": {"downloads": 9_000, "likes": 40},
        "TheBloke/Mistral-7B-OpenOrca-AWQ": {"downloads": 50_000, "likes": 10, "tags": ["awq"]},
    })
    return hub


def test_search_results_most_downloaded_first(searchable: HubServer) -> None:
    results = search_models("mistral openorca")
    assert [r.repo for r in results] == ["TheBloke/Mistral-7B-OpenOrca-GGUF", "TheBloke/Mistral-7B-OpenOrca-AWQ",
                                         "TheBloke/Mistral-7B-OpenOrca-GPTQ"]
    top = results[0]
    assert (top.format, top.downloads, top.likes, top.runnable) == ("gguf", 120_000, 250, True)
    assert top.last_modified is not None and top.last_modified.year == 2023
    assert results[1].format == "awq" and not results[1].runnable
    assert ("GET", "/api/models", None) in searchable.requests


def test_search_command_filters_by_format(searchable: HubServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "mistral", "--format", "gptq", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [r["repo"] for r in document["results"]] == ["TheBloke/Mistral-7B-OpenOrca-GPTQ"]
    assert main(["search", "mistral", "7b"]) == 0
    out = capsys.readouterr().out
    assert "TheBloke/Mistral-7B-OpenOrca-GGUF" in out and "120.0k" in out and "2023-10-02" in out
    assert "Private" not in out and "hearth catalog add REPO" in out
    assert main(["search", "nothing-like-this"]) == 0
    assert "No models on the Hub match 'nothing-like-this'" in capsys.readouterr().out


def test_offline_search_says_so_and_the_catalogue_keeps_working(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["search", "mistral"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "offline mode is on" in err and "catalogue" in err
    assert main(["catalog", "--format", "gguf"]) == 0
    assert "mistral-7b-openorca" in capsys.readouterr().out


def test_no_hub_at_all_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert main(["search", "mistral"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach" in err
