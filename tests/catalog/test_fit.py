"""Memory estimates and the fits / tight / too big verdicts against described machines."""

from __future__ import annotations

import pytest

from app.catalog import load_catalog
from app.catalog.fit import Fit, assess, memory_needed
from app.catalog.hardware import describe, parse_size


@pytest.mark.parametrize(("text", "value"), [("16GB", 16 * 10**9), ("8g", 8 * 10**9), ("512M", 512 * 10**6),
                                             ("1024", 1024), ("1.5 GB", 1_500_000_000)])
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "lots", "12 parsecs"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_memory_needed_uses_the_cards_max_ram() -> None:
    catalog = load_catalog()
    _, q4 = catalog.variant("mistral-7b-openorca:gguf:Q4_K_M")
    assert q4.max_ram_bytes is not None
    assert memory_needed(q4) == q4.max_ram_bytes
    _, gptq = catalog.variant("mistral-7b-openorca:gptq:main")
    assert memory_needed(gptq) > gptq.size_bytes


def test_verdicts() -> None:
    catalog = load_catalog()
    _, q4 = catalog.variant("mistral-7b-openorca:gguf:Q4_K_M")  # about 6.9 GB with context
    _, gptq = catalog.variant("mistral-7b-openorca:gptq:main")
    assert assess(q4, describe("ram=16GB")).fit is Fit.GOOD
    assert assess(q4, describe("ram=8GB")).fit is Fit.TIGHT
    assert assess(q4, describe("ram=4GB")).fit is Fit.NO
    assert assess(q4, describe("ram=4GB,vram=8GB")).fit is Fit.GOOD
    assert "runs entirely on the GPU" in assess(q4, describe("ram=4GB,vram=8GB")).reason
    # No GPU: a GPTQ branch still runs once Hearth converts it to GGUF for llama.cpp.
    no_gpu = assess(gptq, describe("ram=64GB"))
    assert no_gpu.fit is Fit.GOOD and "after converting for llama.cpp (no GPU found)" in no_gpu.reason
    assert assess(gptq, describe("ram=2GB")).fit is Fit.NO
    on_gpu = assess(gptq, describe("ram=8GB,vram=24GB"))
    assert on_gpu.fit is Fit.GOOD and "of VRAM" in on_gpu.reason
