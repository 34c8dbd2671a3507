"""Fixtures for catalogue imports: a loopback Hub serving model cards, branches and GGUF files."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hub.hub_server import HubServer


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """An empty started loopback Hub; HF_ENDPOINT points at it, no token, not offline."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    server = HubServer().start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server
    server.stop()
