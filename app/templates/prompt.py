"""Prompt templates: chat messages rendered to the exact prompt string a model expects.

Every template is Jinja source, whether it comes from the catalogue or from a GGUF
file's ``tokenizer.chat_template``. A template inside a downloaded file is untrusted
(CVE-2024-34359 was code execution through one), so all of them render in Jinja's
immutable sandbox, which refuses attribute access to dunders and Python internals, and
within time, memory and output limits (:mod:`app.templates.environment`). A file's own
template renders in Transformers' environment, byte for byte as ``apply_chat_template``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jinja2

from app.errors import HearthError
from app.templates.environment import (
    MAX_SOURCE_CHARS,
    describe_failure,
    hearth_environment,
    hf_environment,
    one_line,
    render_bounded,
)
from app.templates.sandbox import IsolatedFailure, isolation_enabled, render_isolated

ROLES = ("system", "user", "assistant", "tool")
Dialect = str  # "hearth" (catalogue formats) or "transformers" (templates from model files)


class TemplateError(HearthError):
    """A template that could not be compiled or rendered; the message names the model."""


class TemplateRefusal(TemplateError):
    """The template itself refused this conversation (its ``raise_exception``).

    ``reason`` is the template's own words; ``remedy`` is a change to the conversation
    that the template accepts ("fold_system" or "merge_turns"), when one was found.
    """

    def __init__(self, message: str, reason: str, remedy: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.remedy = remedy


@dataclass(frozen=True)
class Message:
    """One chat message as the template sees it (``reasoning``: a reply's thinking, kept apart)."""

    role: str
    content: str
    reasoning: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; expected one of {', '.join(ROLES)}")

    def as_dict(self) -> dict[str, Any]:
        """The message as Transformers passes it: reasoning under all the names templates read."""
        message: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.reasoning is not None:
            message = {"thinking": self.reasoning, **message, "reasoning_content": self.reasoning}
        return message


_ENVIRONMENTS = {"hearth": hearth_environment(), "transformers": hf_environment()}




@dataclass(frozen=True)
class PromptTemplate:
    """A chat format: Jinja source plus the stop strings that end a reply.

    ``format`` is the single-turn shape as model cards print it, for people;
    ``jinja`` is what renders, multi-turn rules included.
    """

    id: str
    name: str
    jinja: str
    stop: tuple[str, ...] = ()
    format: str = ""
    supports_system: bool = True
    multi_turn: str = ""
    source: str = ""
    origin: str = "catalogue"
    extra_context: Mapping[str, Any] = field(default_factory=dict)
    dialect: Dialect = "hearth"

    @property
    def untrusted(self) -> bool:
        """Written by someone else: a model file's own template ("gguf") or one imported from the Hub
        into the user's catalogue ("imported"). These render in the template process."""
        return self.origin in ("gguf", "imported")

    @cached_property
    def _compiled(self) -> jinja2.Template:
        if len(self.jinja) > MAX_SOURCE_CHARS:
            raise TemplateError(f"prompt template {self.name!r} is {len(self.jinja):,} characters long, more than "
                                f"a chat template can be ({MAX_SOURCE_CHARS:,})")
        try:
            return _ENVIRONMENTS[self.dialect].from_string(self.jinja)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"prompt template {self.name!r} is not valid Jinja (line {exc.lineno}): "
                f"{one_line(exc.message or '')}"
            ) from None
        except (RecursionError, MemoryError, ValueError, OverflowError) as exc:
            raise TemplateError(
                f"prompt template {self.name!r} cannot be compiled ({type(exc).__name__}): it is too "
                "large or too deeply nested"
            ) from None

    def compile(self) -> None:
        """Parse the template now, so that a broken one fails at load time."""
        self._compiled  # noqa: B018 - cached_property does the work

    def render(
        self,
        messages: Iterable[Message],
        *,
        add_generation_prompt: bool = True,
        bos_token: str = "<s>",
        eos_token: str = "</s>",
        model_name: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        documents: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """Render a conversation to the exact prompt string, byte for byte.

        Any failure, the template's own refusal included, is one TemplateError line that
        names the model; a refusal is a :class:`TemplateRefusal`.
        """
        msgs = list(messages)
        if msgs and msgs[0].role == "system" and not self.supports_system:
            msgs = msgs[1:]
        context: dict[str, Any] = dict(self.extra_context)
        if self.dialect == "transformers":
            context.update(tools=[dict(t) for t in tools] if tools is not None else None,
                           documents=[dict(d) for d in documents] if documents is not None else None)
        context.update(
            messages=[m.as_dict() for m in msgs],
            add_generation_prompt=add_generation_prompt,
            bos_token=bos_token,
            eos_token=eos_token,
        )
        if self.origin == "gguf" and model_name:
            prefix = f"the chat template inside {model_name}"
        else:
            prefix = f"prompt template {self.name!r}" + (f" for {model_name}" if model_name else "")
        try:
            compiled = self._compiled
        except TemplateError as exc:
            if model_name:
                raise TemplateError(f"{model_name}: {exc}") from None
            raise
        try:
            if self.untrusted and isolation_enabled():
                return render_isolated(self.jinja, self.dialect, context)
            # A template from a model file or the Hub rendered here (isolation off) keeps the strict
            # memory budget; our catalogue's skips its cost (seconds in a long-running app with a large heap).
            return render_bounded(compiled, context, strict_memory=self.untrusted)
        except IsolatedFailure as failure:
            kind, words, reason = failure.kind, failure.words, failure.reason
        except Exception as exc:  # anything a template can provoke: one line, never a traceback
            kind, words, reason = describe_failure(exc)
        if kind == "refused":
            raise TemplateRefusal(f"{prefix} {words}", reason)
        raise TemplateError(f"{prefix} {words}")


def conversation(system: str | None, turns: Sequence[str]) -> list[Message]:
    """Build messages from an optional system text and alternating user/assistant turns."""
    messages: list[Message] = []
    if system is not None:
        messages.append(Message("system", system))
    for index, text in enumerate(turns):
        messages.append(Message("user" if index % 2 == 0 else "assistant", text))
    return messages
