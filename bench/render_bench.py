"""Prompt render time: Hearth (the catalogue's ChatML, in a window-sized heap) against Transformers'
``render_jinja_template`` on the same template, alternating, identical output asserted.

    PYTHONPATH=. .venv/bin/python bench/render_bench.py [LABEL]
"""

from __future__ import annotations

import statistics
import sys
import time

from transformers.utils.chat_template_utils import render_jinja_template

from app.catalog import load_catalog
from app.templates.prompt import Message

ROUNDS = 30


def main() -> int:
    label = sys.argv[1] if len(sys.argv) > 1 else "hearth"
    heap = [{"a": [i, str(i)]} for i in range(100_000)]  # about what the window's process holds
    template = load_catalog().templates["chatml"]
    turns = []
    for i in range(10):
        turns += [Message("user", f"question {i} " * 20), Message("assistant", f"answer {i} " * 60)]
    turns.append(Message("user", "last"))
    messages = [{"role": m.role, "content": m.content} for m in turns]
    hearth, reference = [], []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        ours = template.render(turns, bos_token="", eos_token="<|im_end|>")
        hearth.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = render_jinja_template([messages], chat_template=template.jinja, add_generation_prompt=True,
                                       bos_token="", eos_token="<|im_end|>")[0][0]
        reference.append(time.perf_counter() - start)
        assert ours == theirs, "the two renders differ"
    print(f"{label}: Hearth render median {statistics.median(hearth) * 1000:.2f} ms (max {max(hearth) * 1000:.1f}); "
          f"Transformers median {statistics.median(reference) * 1000:.2f} ms (max {max(reference) * 1000:.1f}); "
          f"identical output; {len(heap):,} objects held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
