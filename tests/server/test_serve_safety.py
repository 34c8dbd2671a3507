"""`hearth serve`'s safety: API keys, loopback by default, a warning when exposed, CORS off, 429 when full."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import openai
import psutil
import pytest

from app.server.engine_bridge import EngineBridge
from app.server.runner import BackgroundServer, ServerSettings, exposure_warning, is_loopback

ROOT = Path(__file__).resolve().parents[2]
KEY = "s3cret-key"


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    """A server with an API key and CORS for one origin; its model is known but never loaded."""
    from tests.assets import smollm2_path

    home = tmp_path_factory.mktemp("locked-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HEARTH_HOME", str(home))
        bridge = EngineBridge(models_dir=home / "models", max_queue=0)
        bridge.add_model(str(smollm2_path()))
        server = BackgroundServer(bridge, ServerSettings(port=0, api_key=KEY,
                                                         cors_origins=("http://editor.example",))).start()
        try:
            yield server
        finally:
            server.stop()


def test_missing_or_wrong_key_is_401_and_the_right_one_works(locked: BackgroundServer) -> None:
    for key in ("", "wrong"):
        api = openai.OpenAI(base_url=locked.url, api_key=key or "x", max_retries=0)
        if not key:
            response = httpx.get(f"{locked.url}/models")
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "invalid_api_key"
            continue
        with pytest.raises(openai.AuthenticationError):
            api.models.list()
    good = openai.OpenAI(base_url=locked.url, api_key=KEY, max_retries=0)
    assert [m.id for m in good.models.list().data] == ["SmolLM2-135M-Instruct.Q4_1"]


def test_a_full_queue_is_429(locked: BackgroundServer) -> None:
    api = openai.OpenAI(base_url=locked.url, api_key=KEY, max_retries=0)
    with pytest.raises(openai.RateLimitError) as caught:
        api.chat.completions.create(model="SmolLM2-135M-Instruct.Q4_1",
                                    messages=[{"role": "user", "content": "hi"}])
    assert "busy" in caught.value.message


def test_cors_only_for_the_named_origin(locked: BackgroundServer) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}
    allowed = httpx.options(f"{locked.url}/chat/completions",
                            headers={"Origin": "http://editor.example", **preflight})
    assert allowed.headers.get("access-control-allow-origin") == "http://editor.example"
    other = httpx.options(f"{locked.url}/chat/completions", headers={"Origin": "http://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers


def test_cors_is_off_by_default(tmp_path: Path) -> None:
    bridge = EngineBridge(models_dir=tmp_path)
    server = BackgroundServer(bridge, ServerSettings(port=0)).start()
    try:
        response = httpx.get(f"{server.url}/models", headers={"Origin": "http://evil.example"})
        assert response.status_code == 200 and response.json()["data"] == []
        assert "access-control-allow-origin" not in response.headers
    finally:
        server.stop()


def test_exposure_rules() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert exposure_warning("127.0.0.1", None) is None
    assert exposure_warning("0.0.0.0", "key") is None
    warning = exposure_warning("0.0.0.0", None)
    assert warning and "--api-key" in warning


def _serve(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", "0", *args], cwd=ROOT, env=env,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert process.stderr is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "Hearth API at" not in seen and time.monotonic() < deadline and process.poll() is None:
        seen += process.stderr.readline()
    return process, seen


@pytest.mark.slow
def test_cli_binds_loopback_by_default_and_warns_when_exposed() -> None:
    process, said = _serve()
    try:
        assert "Hearth API at http://127.0.0.1:" in said and "warning" not in said
        ports = [c.laddr for c in psutil.Process(process.pid).net_connections() if c.status == "LISTEN"]
        assert ports and all(address.ip == "127.0.0.1" for address in ports)
        port = ports[0].port
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 200
    finally:
        process.terminate()
        process.wait(30)
    exposed, said = _serve("--host", "0.0.0.0")
    try:
        assert "warning" in said and "--api-key" in said
    finally:
        exposed.terminate()
        exposed.wait(30)


def test_a_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    import socket

    from app.errors import HearthError
    from app.server.runner import bind

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        with pytest.raises(HearthError, match=r"cannot listen on 127\.0\.0\.1:.*choose another --port"):
            bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()
