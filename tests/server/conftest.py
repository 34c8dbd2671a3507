"""One real `hearth serve` (SmolLM2 on the real engine, on loopback) shared by the server tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.server.api import RequestRecord
from app.server.engine_bridge import EngineBridge
from app.server.runner import BackgroundServer, ServerSettings


class Served:
    """A running server, its engine bridge and the request log it wrote."""

    def __init__(self, server: BackgroundServer, log: list[RequestRecord], model_id: str) -> None:
        self.server, self.log, self.model_id = server, log, model_id
        self.url = server.url
        self.bridge = server.bridge


@pytest.fixture(scope="package")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from tests.assets import smollm2_path

    home = tmp_path_factory.mktemp("serve-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HEARTH_HOME", str(home))
        bridge = EngineBridge(models_dir=Path(home) / "models", load_options={"ctx": 1024, "n_threads": 2})
        model = bridge.preload(str(smollm2_path()))
        log: list[RequestRecord] = []
        server = BackgroundServer(bridge, ServerSettings(port=0, on_request=log.append)).start()
        try:
            yield Served(server, log, model.id)
        finally:
            server.stop()
