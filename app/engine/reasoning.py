"""Thinking blocks in replies: ``<think>…</think>`` and its common variants, split from the answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# (opening, closing) markers that reasoning models put around their thinking.
THINK_TAGS: tuple[tuple[str, str], ...] = (
    ("<think>", "</think>"),
    ("<thinking>", "</thinking>"),
    ("<reasoning>", "</reasoning>"),
    ("<|begin_of_thought|>", "<|end_of_thought|>"),
    ("◁think▷", "◁/think▷"),
    ("[THINK]", "[/THINK]"),
    ("<seed:think>", "</seed:think>"),
)


@dataclass(frozen=True)
class SplitReply:
    """A reply cut into its thinking and its answer.

    ``thinking`` is None when the reply has no thinking block; ``open`` is True while the
    block has not been closed yet (the model is still thinking, as it streams).
    """

    thinking: str | None
    answer: str
    open: bool = False
    tags: tuple[str, str] = THINK_TAGS[0]


def split_thinking(text: str) -> SplitReply:
    """Find the thinking block at the start of a reply.

    A reply may also start inside the block without its opening tag: templates such as
    DeepSeek-R1's open ``<think>`` in the prompt, so the reply holds only ``…</think>``.
    """
    stripped = text.lstrip()
    for opening, closing in THINK_TAGS:
        if stripped.startswith(opening):
            body = stripped[len(opening):]
            end = body.find(closing)
            if end < 0:
                return SplitReply(body.strip("\n"), "", True, (opening, closing))
            return SplitReply(body[:end].strip("\n"), body[end + len(closing):].lstrip("\n"), False,
                              (opening, closing))
    for opening, closing in THINK_TAGS:
        end = text.find(closing)
        if end >= 0 and opening not in text[:end]:
            return SplitReply(text[:end].strip("\n"), text[end + len(closing):].lstrip("\n"), False,
                              (opening, closing))
    return SplitReply(None, text)


def template_reads_reasoning(source: str) -> bool:
    """Whether a chat template takes a reply's thinking as a separate field."""
    return "reasoning_content" in source or "message.thinking" in source or "message['thinking']" in source


def template_strips_thinking(source: str) -> bool:
    """Whether a chat template cuts thinking out of earlier replies itself (``split('</think>')``)."""
    return any(closing in source for _, closing in THINK_TAGS)


def history_for_template(messages: Sequence[tuple[str, str]], source: str) -> list[tuple[str, str, str | None]]:
    """(role, content, reasoning) for each message, as this template expects earlier replies.

    A template that reads ``reasoning_content`` gets the thinking apart from the answer;
    one that cuts ``</think>`` itself gets the reply as the model wrote it; any other
    template gets the answer only, so old thoughts never reach the next turn.
    """
    reads, strips = template_reads_reasoning(source), template_strips_thinking(source)
    result: list[tuple[str, str, str | None]] = []
    for role, content in messages:
        if role != "assistant":
            result.append((role, content, None))
            continue
        split = split_thinking(content)
        if split.thinking is None:
            result.append((role, content, None))
        elif reads:
            result.append((role, split.answer, split.thinking))
        elif strips:
            result.append((role, content, None))
        else:
            result.append((role, split.answer, None))
    return result
