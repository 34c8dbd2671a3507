"""Measure a converted GGUF against the exact dequantised (F16) model: KL divergence and top-1 agreement.

Both models run in llama.cpp on the CPU, in a spawned child process that a cancel kills, over the
first ``max_tokens`` tokens of a fixed English text. The reference's logits are computed once per
conversion and kept (as ``.npy``) in a cache folder, so several candidates cost one reference pass.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.catalog.installed import QualityFigures
from app.convert.requantize import FTYPES, run_in_child

DEFAULT_QUALITY_TOKENS = 256
# A fixed text of everyday English prose, numbers and a little code: enough for ~400 tokens of a
# 32k vocabulary. It never changes, so figures of different conversions compare.
FIXED_TEXT = """\
The old lighthouse stood at the end of the harbour wall, painted white with a red band below the lamp.
Every evening at dusk the keeper climbed the hundred and twelve steps, wound the clockwork that turned
the lens, and wrote the weather in a leather book: wind from the south-west, force four, visibility good.
Ships that passed in the night saw the light flash twice every ten seconds and knew exactly where they were.

When the harbour was modernised in 1987, the lamp was replaced by an automatic beacon and the keeper
moved to a cottage in the village. He still walked along the wall each morning. Children asked him how
far the light could be seen, and he told them: about twenty nautical miles on a clear night, which is
roughly thirty-seven kilometres, because the curve of the earth hides anything lower than the horizon.

A recipe for the bread his wife baked on Saturdays: mix 500 g of flour, 10 g of salt, 7 g of dried yeast
and 350 ml of warm water. Knead for ten minutes until the dough is smooth, let it rise for an hour,
shape it, let it rise again for forty minutes, then bake at 220 degrees Celsius for thirty-five minutes.

def fibonacci(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a

print([fibonacci(i) for i in range(10)])  # [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]

Question: Why is the sky blue during the day but red at sunset?
Answer: Sunlight is scattered by the molecules of the air, and blue light, with its shorter wavelength,
is scattered far more than red. At noon the scattered blue light reaches us from every direction of the
sky. At sunset the light crosses much more air before it reaches us, most of the blue is scattered away
on the long path, and the light that remains is mostly orange and red.

The committee met on Tuesday, 14 March, to discuss the budget for the coming year. The treasurer reported
that income had risen by 4.5 per cent while costs had risen by almost 7 per cent, mainly because of energy
prices. After a long discussion the members agreed to delay the new roof by one year, to ask the council
for a grant, and to hold a summer fair to raise the remaining money.
"""


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return np.asarray(x - np.log(np.exp(x).sum(axis=-1, keepdims=True)))


def compare_logits(reference: np.ndarray, candidate: np.ndarray) -> QualityFigures:
    """KL(reference || candidate) per position (mean and max, nats) and top-1 agreement of two logit arrays."""
    ref, cand = np.asarray(reference), np.asarray(candidate)
    log_p, log_q = _log_softmax(ref), _log_softmax(cand)
    kl = np.maximum((np.exp(log_p) * (log_p - log_q)).sum(axis=-1), 0.0)
    agree = np.argmax(ref, axis=-1) == np.argmax(cand, axis=-1)
    return QualityFigures(float(kl.mean()), float(kl.max()), float(agree.mean()), len(kl))


def model_logits(path: str, tokens: list[int] | None, max_tokens: int, threads: int) -> tuple[list[int], Any]:
    """Logits ``[tokens, vocab]`` of the GGUF at ``path`` on llama.cpp's plain CPU path, and the tokens.

    ``tokens`` None: the fixed text's first ``max_tokens`` tokens (with BOS where the model wants it).
    Weights stay in llama.cpp's ordinary CPU buffers (no repacked or AMX copies: those are faster but
    differ between machines, and AMX kernels crash on some virtual machines), and nothing is offloaded.
    """
    import ctypes

    import llama_cpp as lib

    lib.llama_backend_init()
    model_params = lib.llama_model_default_params()
    model_params.n_gpu_layers = 0
    model_params.use_extra_bufts = False
    model = lib.llama_model_load_from_file(path.encode(), model_params)
    if not model:
        raise RuntimeError(f"llama.cpp could not load {path}")
    try:
        vocab = lib.llama_model_get_vocab(model)
        n_vocab = lib.llama_vocab_n_tokens(vocab)
        if tokens is None:
            text = FIXED_TEXT.encode()
            buffer = (lib.llama_token * (len(text) + 8))()
            count = lib.llama_tokenize(vocab, text, len(text), buffer, len(buffer), True, False)
            tokens = list(buffer[: max(count, 0)])[:max_tokens]
        n = len(tokens)
        context_params = lib.llama_context_default_params()
        context_params.n_ctx = context_params.n_batch = context_params.n_ubatch = n + 8
        context_params.n_threads = context_params.n_threads_batch = threads
        context_params.offload_kqv = False
        context = lib.llama_init_from_model(model, context_params)
        if not context:
            raise RuntimeError("llama.cpp could not create a context")
        batch = lib.llama_batch_init(n, 0, 1)
        try:
            for i, token in enumerate(tokens):
                batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, i, 1, True
                batch.seq_id[i][0] = 0
            batch.n_tokens = n
            if lib.llama_decode(context, batch) != 0:
                raise RuntimeError("llama.cpp could not evaluate the text")
            logits = lib.llama_get_logits(context)
            array = np.ctypeslib.as_array(ctypes.cast(logits, ctypes.POINTER(ctypes.c_float)), shape=(n, n_vocab))
            return tokens, array.astype(np.float32, copy=True)
        finally:
            lib.llama_batch_free(batch)
            lib.llama_free(context)
    finally:
        lib.llama_model_free(model)


def _measure_child(reference: str, quantize: str, candidate: str, cache: str, max_tokens: int, threads: int,
                   result: str, log_path: str) -> None:
    """Child body: optionally requantise ``reference`` to ``candidate``, then measure it; JSON to ``result``."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    import ctypes

    import llama_cpp

    if quantize:
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = FTYPES[quantize]
        params.nthread = threads
        if llama_cpp.llama_model_quantize(reference.encode(), candidate.encode(), ctypes.byref(params)) != 0:
            os._exit(3)
    cached_logits, cached_tokens = Path(cache) / "reference-logits.npy", Path(cache) / "reference-tokens.json"
    if cached_logits.is_file() and cached_tokens.is_file():
        tokens = json.loads(cached_tokens.read_text())
        ref_logits = np.load(cached_logits)
    else:
        tokens, ref_logits = model_logits(reference, None, max_tokens, threads)
        np.save(cached_logits, ref_logits)
        cached_tokens.write_text(json.dumps(tokens))
    _, cand_logits = model_logits(candidate, tokens, max_tokens, threads)
    figures = compare_logits(ref_logits, cand_logits)
    Path(result).write_text(json.dumps(figures.__dict__))
    os._exit(0)


class QualityMeter:
    """Measures candidates against one F16 reference, keeping the reference's logits between calls."""

    def __init__(self, reference: Path, max_tokens: int = DEFAULT_QUALITY_TOKENS, threads: int | None = None) -> None:
        self.reference = reference
        self.max_tokens = max(1, max_tokens)
        self.threads = threads or max(1, os.cpu_count() or 1)
        self._scratch = tempfile.TemporaryDirectory(prefix="hearth-quality-")

    def measure(self, candidate: Path, cancel: Callable[[], bool], quantize_to: str | None = None) -> QualityFigures:
        """Figures of ``candidate`` (first written from the reference as ``quantize_to`` when given)."""
        result = Path(self._scratch.name) / "result.json"
        result.unlink(missing_ok=True)
        what = f"requantise to {quantize_to.upper()} and measure it" if quantize_to else "measure the quality"
        run_in_child(_measure_child, (str(self.reference), quantize_to or "", str(candidate), self._scratch.name,
                                      self.max_tokens, self.threads, str(result)), cancel, what)
        figures = QualityFigures.from_json(json.loads(result.read_text()))
        assert figures is not None
        return figures

    def close(self) -> None:
        self._scratch.cleanup()

    def __enter__(self) -> QualityMeter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
