"""The card parser and prompt mapping on cards written for these tests (real cards differ)."""

from __future__ import annotations

import pytest

from app.catalog.card import CardError, parse_card
from app.catalog.card_prompt import choose_from_card
from app.catalog.loader import load_catalog
from app.engine.templates import Message, PromptTemplate
from tests.catalog.hub_repos import seed_text

VICUNA_CARD = """---
license: llama2
model_creator: LMSYS
model_name: Vicuna 13B v1.5
---
# Vicuna 13B v1.5 - GPTQ

## Prompt template: Vicuna

```
A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, \
and polite answers to the user's questions. USER: {prompt} ASSISTANT:

```

| Branch | Bits | Group Size | Act Order (desc_act) | File Size | ExLlama Compatible? | Made With | Description |
| ------ | ---- | ---------- | -------------------- | --------- | ------------------- | --------- | ----------- |
| main | 4 | 128 | False | 7.26 GB | True | GPTQ-for-LLaMa | Most compatible. |
| gptq-8bit-64g-actorder_True | 8 | 64 | True | 1,340 MB | False | AutoGPTQ | 8-bit, 64g. |
"""

ALPACA_FRONT_MATTER_ONLY = """---
prompt_template: 'Below is an instruction that describes a task. Write a response that appropriately completes
  the request.


  ### Instruction:

  {prompt}


  ### Response:

  '
---
# Some Alpaca GPTQ
"""


def templates() -> dict:
    catalog = load_catalog(include_user=False)
    return {t.id: {"name": t.name, "format": t.format, "jinja": t.jinja} for t in catalog.templates.values()}


def test_old_layout_with_other_values() -> None:
    card = parse_card(VICUNA_CARD)
    main, eight = card.rows
    assert (main.branch, main.bits, main.group_size, main.act_order, main.exllama, main.made_with) == (
        "main", 4, 128, False, True, "GPTQ-for-LLaMa")
    assert (main.damp_percent, main.dataset, main.seq_len) == (None, None, None)
    assert (eight.bits, eight.group_size, eight.act_order, eight.size_bytes) == (8, 64, True, 1_340_000_000)
    assert card.front["model_creator"] == "LMSYS"


def test_unknown_prompt_becomes_a_template_with_the_system_line_kept() -> None:
    card = parse_card(VICUNA_CARD)
    chosen = choose_from_card(card.prompt, card.text, "vicuna-13b", "TheBloke/vicuna-13B-v1.5-GPTQ", templates())
    assert chosen is not None and chosen.spec is not None and chosen.id == "vicuna-13b-card"
    assert chosen.system_message == ("A chat between a curious user and an artificial intelligence assistant. "
                                     "The assistant gives helpful, detailed, and polite answers to the user's "
                                     "questions.")
    # The blank line before the closing fence is the card's trailing line break, as its front matter writes it.
    assert chosen.spec["format"] == "{system_message} USER: {prompt} ASSISTANT:\n"
    assert "from the model card" in chosen.spec["source"] and chosen.spec["name"] == "Vicuna (from the model card)"
    template = PromptTemplate(id=chosen.id, name=chosen.spec["name"], jinja=chosen.spec["jinja"])
    one_turn = template.render([Message("system", chosen.system_message), Message("user", "Hi")])
    assert one_turn == chosen.system_message + " USER: Hi ASSISTANT:\n"
    two_turns = template.render([Message("system", "S."), Message("user", "Hi"), Message("assistant", "Hello."),
                                 Message("user", "Bye")])
    assert two_turns == "S. USER: Hi ASSISTANT:\nHello. USER: Bye ASSISTANT:\n"
    assert "USER:" in chosen.spec["stop"]


def test_prompt_from_front_matter_only() -> None:
    card = parse_card(ALPACA_FRONT_MATTER_ONLY)
    assert card.prompt is not None and card.prompt.name is None
    chosen = choose_from_card(card.prompt, card.text, "alpaca", "x/Alpaca-GPTQ", templates())
    assert chosen is not None and chosen.spec is not None
    template = PromptTemplate(id="a", name="a", jinja=chosen.spec["jinja"])
    rendered = template.render([Message("user", "Add 2 and 2.")])
    assert rendered.endswith("### Instruction:\nAdd 2 and 2.\n\n### Response:\n")


def test_llama2_chat_card_gets_our_template_and_its_system_line() -> None:
    card = parse_card(seed_text("001"))  # flattened onto one line, with a misprinted prompt block
    chosen = choose_from_card(card.prompt, card.text, "llama-2-13b-chat", "TheBloke/Llama-2-13B-chat-GPTQ",
                              templates())
    assert chosen is not None and (chosen.id, chosen.spec) == ("llama-2-chat", None)
    assert chosen.system_message is not None and chosen.system_message.startswith("You are a helpful, respectful")
    assert card.rows[0].branch == "main" and len(card.rows) == 4


def test_duplicate_branch_and_missing_columns_are_errors() -> None:
    twice = VICUNA_CARD.replace("gptq-8bit-64g-actorder_True", "main")
    with pytest.raises(CardError, match="branch 'main' appears twice"):
        parse_card(twice)
    no_bits_width = VICUNA_CARD.replace("| gptq-8bit-64g-actorder_True | 8 |", "| gptq-8bit-64g-actorder_True | 5 |")
    with pytest.raises(CardError, match="5 bits is not a GPTQ width"):
        parse_card(no_bits_width)
    no_size = VICUNA_CARD.replace("File Size", "Weight")
    with pytest.raises(CardError, match="no size column"):
        parse_card(no_size)
