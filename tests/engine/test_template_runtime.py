"""File templates at run time: one BOS on token ids, EOG tokens from the vocabulary, a real chat through the worker."""

from __future__ import annotations

from pathlib import Path

import llama_cpp
import pytest
from transformers.utils.chat_template_utils import render_jinja_template

from app.catalog import load_catalog
from app.engine.chat_format import resolve_chat_format
from app.engine.chat_session import ChatSession, sampling_for
from app.engine.client import EngineClient
from app.engine.llama_runner import LlamaRunner, LogTail
from app.engine.protocol import LoadSettings
from app.engine.templates import Message, TemplateRefusal
from tests.engine.tiny_gguf import write_tiny_gguf

BOS_ID = 1  # tiny_gguf: <unk>, <s>, </s>, ...

# Uses what Transformers' environment has and Hearth's catalogue one does not: {% break %},
# {% continue %}, raise_exception, trim_blocks/lstrip_blocks and a lenient undefined variable.
LOOPS_TEMPLATE = """{{ bos_token }}
{% for message in messages %}
    {% if message.role == 'tool' %}
        {{ raise_exception('Tool messages are not supported by this model.') }}
    {% endif %}
    {% if message.role == 'system' %}
        {% continue %}
    {% endif %}
    {% if loop.index > 40 %}
        {% break %}
    {% endif %}
<|im_start|>{{ message.role }}
{{ message.content }}{{ undefined_suffix }}<|im_end|>
{% endfor %}
{% if add_generation_prompt %}
<|im_start|>assistant
{% endif %}"""


@pytest.fixture(scope="module")
def loops_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("loops") / "loops.gguf", chat_template=LOOPS_TEMPLATE,
                           chatml_specials=True, name="Loops")


def _runner(path: Path) -> LlamaRunner:
    runner = LlamaRunner(LoadSettings(str(path), n_ctx=256, n_threads=1), LogTail.install())
    runner.load()
    return runner


@pytest.mark.parametrize("emits", ["{{ bos_token }}", "<s>"])
def test_a_template_that_emits_bos_gives_one_bos_token(tmp_path: Path, emits: str) -> None:
    template = emits + "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}[assistant]"
    path = write_tiny_gguf(tmp_path / "bos.gguf", chat_template=template)
    fmt = resolve_chat_format(path, load_catalog())
    prompt = fmt.render([Message("user", "hello world")])
    assert prompt.startswith("<s>")
    runner = _runner(path)
    try:
        assert runner.add_bos  # llama.cpp would add one of its own
        tokens = runner.tokenize(prompt)
        assert tokens[0] == BOS_ID and tokens.count(BOS_ID) == 1, tokens
        # What the model would see if the BOS text were not noticed: two BOS tokens.
        raw = prompt.encode()
        buffer = (llama_cpp.llama_token * (len(raw) + 8))()
        n = llama_cpp.llama_tokenize(runner.vocab, raw, len(raw), buffer, len(raw) + 8, True, True)
        assert list(buffer[:n]).count(BOS_ID) == 2
        # A prompt without the BOS text still gets exactly one, from llama.cpp.
        assert runner.tokenize("[user] hi").count(BOS_ID) == 1
    finally:
        runner.close()


def test_end_of_generation_tokens_come_from_the_vocabulary(loops_model: Path) -> None:
    runner = _runner(loops_model)
    try:
        eog = runner.eog_texts()
    finally:
        runner.close()
    # The file's eos is </s>; llama.cpp's EOG set adds <|im_end|>, so a reply ends on it too.
    assert "</s>" in eog and "<|im_end|>" in eog


@pytest.mark.slow
def test_real_chat_through_the_worker_with_loopcontrols_and_raise_exception(loops_model: Path) -> None:
    fmt = resolve_chat_format(loops_model, load_catalog())
    assert fmt.source == "gguf" and "<|im_end|>" in fmt.stop
    history = [Message("system", "ignored by this template"), Message("user", "hello"),
               Message("assistant", "<think>\nhm\n</think>\nhi there"), Message("user", "the world")]
    with EngineClient() as client:
        client.load_model(LoadSettings(str(loops_model), n_ctx=512, n_threads=2))
        session = ChatSession(client, fmt, sampling_for(None, temperature=0, max_tokens=8))
        prompt = session.prompt_for(history)
        assert prompt == ("<s>\n<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\nhi there<|im_end|>\n"
                          "<|im_start|>user\nthe world<|im_end|>\n<|im_start|>assistant\n")
        reference, _ = render_jinja_template([[m.as_dict() for m in fmt.template_messages(history)]],
                                             chat_template=LOOPS_TEMPLATE, add_generation_prompt=True,
                                             bos_token="<s>", eos_token="</s>")
        assert prompt == reference[0]
        reply = "".join(session.reply(history))
        stats = session.last_stats
        assert stats is not None and stats.generated_tokens >= 1 and stats.prompt_tokens > 10
        assert "<|im_end|>" not in reply
        with pytest.raises(TemplateRefusal, match="Tool messages are not supported"):
            session.prompt_for([Message("user", "hi"), Message("tool", "42")])
        # The engine is still there for the next turn.
        assert "".join(session.reply([Message("user", "hello")])) is not None
