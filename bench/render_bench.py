"""Prompt render time: Hearth (catalogue ChatML, in a window-sized heap) vs Transformers' render_jinja_template, alternating."""
# Run: PYTHONPATH=. .venv/bin/python bench/render_bench.py LABEL
import gc, statistics, sys, time
from transformers.utils.chat_template_utils import render_jinja_template
from app.catalog import load_catalog
from app.templates.prompt import Message
heap = [{"a": [i, str(i)]} for i in range(100_000)]  # about what the window's process holds
cat = load_catalog()
tpl = cat.templates["chatml"]
turns = []
for i in range(10):
    turns += [Message("user", f"question {i} " * 20), Message("assistant", f"answer {i} " * 60)]
turns.append(Message("user", "last"))
msgs = [{"role": m.role, "content": m.content} for m in turns]
h, t = [], []
for r in range(30):
    s = time.perf_counter(); a = tpl.render(turns, bos_token="", eos_token="<|im_end|>"); h.append(time.perf_counter() - s)
    s = time.perf_counter(); b = render_jinja_template([msgs], chat_template=tpl.jinja, add_generation_prompt=True, bos_token="", eos_token="<|im_end|>")[0][0]; t.append(time.perf_counter() - s)
assert a == b, (a[-200:], b[-200:])
print(f"{sys.argv[1]}: Hearth render median {statistics.median(h)*1000:.2f} ms (max {max(h)*1000:.1f}); "
      f"Transformers median {statistics.median(t)*1000:.2f} ms (max {max(t)*1000:.1f}); identical output")
