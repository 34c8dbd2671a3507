"""Fixtures for the download tests: the loopback Hub, HF_ENDPOINT pointing at it, short timeouts."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.hub import disk, receive, transfer
from app.paths import app_dirs
from tests.hub.hub_server import HubServer

GGUF_REPO = "TheBloke/Tiny-GGUF"
GPTQ_REPO = "TheBloke/Tiny-GPTQ"


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (incompressible, so nothing can cheat on size)."""
    return random.Random(seed).randbytes(size)


def gguf_payload(size: int, seed: int = 0) -> bytes:
    return b"GGUF" + payload(size - 4, seed)


def use_quick_transfers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Short timeouts and back-off so fault tests take seconds, and no token from the real machine."""
    monkeypatch.setattr(transfer, "SETTINGS", transfer.TransferSettings(
        read_timeout=1.0, connect_timeout=3.0, retries=3, backoff=0.05))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HEARTH_FAKE_FREE_BYTES"):
        monkeypatch.delenv(name, raising=False)
    disk.reset_fake_disk()
    monkeypatch.setattr(receive, "_direct_off", False)  # a fall-back in one test does not leak into the next
    for name in ("HEARTH_DIRECT_RECV", "HEARTH_REUSE_HF_CACHE", "HF_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(app_dirs().cache / "empty-hf-cache"))  # never the user's real cache
    yield
    disk.reset_fake_disk()


def running_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """A started loopback Hub with two repos; HF_ENDPOINT points at it."""
    server = HubServer().start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    server.add_repo(GGUF_REPO, {
        "main": {
            "README.md": b"# Tiny GGUF\n",
            "tiny.Q4_K_M.gguf": gguf_payload(300_000, 1),
            "tiny.Q8_0.gguf": gguf_payload(500_000, 2),
            "big.Q6_K.gguf-split-a": gguf_payload(200_000, 3),
            "big.Q6_K.gguf-split-b": payload(150_000, 4),
            "shard-00001-of-00002.gguf": gguf_payload(120_000, 5),
            "shard-00002-of-00002.gguf": payload(80_000, 6),
        },
    })
    server.add_repo(GPTQ_REPO, {
        "main": {
            "config.json": b'{"model_type": "llama", "branch": "main"}',
            "quantize_config.json": b'{"bits": 4, "group_size": 128}',
            "model.safetensors": payload(400_000, 7),
            "tokenizer.json": b'{"version": "1.0"}',
        },
        "gptq-4bit-32g-actorder_True": {
            "config.json": b'{"model_type": "llama", "branch": "32g"}',
            "quantize_config.json": b'{"bits": 4, "group_size": 32}',
            "model.safetensors": payload(450_000, 8),
            "tokenizer.json": b'{"version": "1.0"}',
        },
    })
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def quick_transfers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from use_quick_transfers(monkeypatch)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    yield from running_hub(monkeypatch)


@pytest.fixture
def models_dir(hearth_home: Path) -> Path:
    return app_dirs().models
