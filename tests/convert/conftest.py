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
def load_llama() -> Iterator[Callable[..., object]]:
    """Load a GGUF in llama.cpp (logits for every position); every model is closed after the test."""
    from llama_cpp import Llama

    loaded: list[Llama] = []

    def load(path: Path, vocab_only: bool = False) -> Llama:
        llm = Llama(str(path), n_ctx=64, logits_all=True, verbose=False, n_threads=2, vocab_only=vocab_only)
        loaded.append(llm)
        return llm

    yield load
    for llm in loaded:
        llm.close()
