"""Fixtures for the converter tests: one trained SentencePiece model per session, llama.cpp loading."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.convert.tiny_gptq import train_tokenizer


@pytest.fixture(scope="session")
def tokenizer_model() -> bytes:
    return train_tokenizer()


@pytest.fixture
def load_llama(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., object]]:
    """Load a GGUF in llama.cpp (logits for every position); every model is closed after the test.

    Weights stay in llama.cpp's plain CPU buffers (``use_extra_bufts = False``, as the quality step
    loads them): on CPUs that report AMX, the AMX copies' matrix kernel crashes in some virtual machines
    (SIGSEGV in ``ggml_backend_amx_mul_mat`` for every quantised model here), which is the build's
    problem, not the converted file's.
    """
    import llama_cpp.llama as high_level
    from llama_cpp import Llama

    default_params = high_level.llama_cpp.llama_model_default_params

    def plain_buffers():  # type: ignore[no-untyped-def]
        params = default_params()
        params.use_extra_bufts = False
        return params

    monkeypatch.setattr(high_level.llama_cpp, "llama_model_default_params", plain_buffers)

    loaded: list[Llama] = []

    def load(path: Path, vocab_only: bool = False) -> Llama:
        llm = Llama(str(path), n_ctx=64, logits_all=True, verbose=False, n_threads=2, vocab_only=vocab_only)
        loaded.append(llm)
        return llm

    yield load
    for llm in loaded:
        llm.close()
