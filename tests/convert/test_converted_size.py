"""The catalogue's size of a converted GPTQ branch (known before downloading it) against the converter's own
plan of real checkpoints: the same type, and the size within 2%."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.catalog.converted_size import converted_size
from app.catalog.model import Variant
from app.convert.checkpoint import GptqBranch
from app.convert.plan import plan_conversion
from tests.convert.tiny_gptq import GptqConfig, build_checkpoint


@pytest.mark.parametrize(("cfg", "gguf_type"), [
    (GptqConfig(3, 128, False, True, "gptq"), "q4_0"),  # exact 3-bit weights in 4-bit blocks
    (GptqConfig(4, 128, False, True, "gptq"), "q4_0"),
    (GptqConfig(8, 128, False, True, "gptq"), "q8_0"),
    (GptqConfig(4, 32, True, True, "gptq"), None),  # act-order groups: requantised, the best measured
], ids=lambda c: c.id if isinstance(c, GptqConfig) else str(c))
def test_catalogue_size_matches_the_conversion_plan(cfg: GptqConfig, gguf_type: str | None, tmp_path: Path,
                                                    tokenizer_model: bytes) -> None:
    model = build_checkpoint(tmp_path / "branch", tokenizer_model, cfg, hidden=512, ffn=1024)
    branch = GptqBranch(model.folder)
    try:
        plan = plan_conversion(branch)
        parameters = sum(int(np.prod(t.shape)) for t in branch.plan)
        size = branch.shards.total_bytes
    finally:
        branch.close()
    variant = Variant("tiny", "tiny/tiny-llama", "main", "gptq", cfg.bits, size, group_size=cfg.group_size,
                      act_order=cfg.desc_act)
    estimate = converted_size(variant, parameters)
    assert estimate.exact is plan.exact
    assert estimate.types == ((plan.out_type,) if plan.exact else plan.candidates)
    assert gguf_type is None or plan.out_type == gguf_type
    assert estimate.size_bytes == pytest.approx(plan.output_bytes, rel=0.02)
    if cfg.bits == 3:  # the GGUF is much larger than the download: sizing by the download is wrong
        assert plan.output_bytes > 1.25 * size
