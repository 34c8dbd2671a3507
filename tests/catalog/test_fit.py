"""Memory estimates and the fits / tight / too big verdicts against described machines."""

from __future__ import annotations

import pytest

from app.catalog import load_catalog
from app.catalog.converted_size import converted_size
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


def test_an_exact_three_bit_branch_is_judged_as_the_larger_gguf_it_converts_to() -> None:
    catalog = load_catalog()
    model, three = catalog.variant("stablebeluga2-70b:gptq:gptq-3bit-128g-actorder_False")  # 28.03 GB download
    converted = converted_size(three, model.parameters)
    # No exact 3-bit group type in llama.cpp: the converter keeps the weights in Q4_0 blocks (4.5 bits each).
    assert converted.exact and converted.type_label == "Q4_0"
    assert 1.35 < converted.size_bytes / three.size_bytes < 1.5
    assert memory_needed(three, model.parameters) > 1.35 * memory_needed(three)
    # 48 GB of RAM: the download would fit comfortably; the 39.6 GB GGUF fills memory.
    report = assess(three, describe("ram=48GB"), parameters=model.parameters)
    assert report.fit is Fit.TIGHT and report.need_bytes == memory_needed(three, model.parameters)
    assert "sized as the GGUF Hearth converts it to: Q4_0, about 39.6 GB, against the branch's 28.0 GB" in report.reason
    assert "3-bit weights in 4-bit blocks" in report.reason
    assert assess(three, describe("ram=40GB"), parameters=model.parameters).fit is Fit.NO
    # On a GPU the converted file is what must fit in VRAM too.
    assert assess(three, describe("ram=16GB,vram=40GB"), parameters=model.parameters).fit is not Fit.GOOD


def test_a_branch_requantised_by_measurement_is_sized_as_its_widest_candidate() -> None:
    catalog = load_catalog()
    model, act = catalog.variant("stablebeluga2-70b:gptq:gptq-3bit-128g-actorder_True")  # act-order groups
    converted = converted_size(act, model.parameters)
    assert not converted.exact and converted.type_label == "Q3_K_M, Q3_K_S or Q3_K_L"
    assert converted.size_bytes == int(model.parameters * 4.27 / 8)  # Q3_K_L, as the converter's plan estimates
    reason = assess(act, describe("ram=64GB"), parameters=model.parameters).reason
    assert "sized as the GGUF Hearth converts it to: Q3_K_M, Q3_K_S or Q3_K_L (the best measured), about 36.8 GB" \
        in reason
