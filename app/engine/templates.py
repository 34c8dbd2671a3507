"""Prompt templates: chat messages rendered to the exact prompt string a model expects.

Every template is Jinja source, whether it comes from the catalogue or from a GGUF
file's ``tokenizer.chat_template``. A template inside a downloaded file is untrusted
(CVE-2024-34359 was code execution through one), so all of them render in Jinja's
immutable sandbox, which refuses attribute access to dunders and Python internals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from app.errors import HearthError

ROLES = ("system", "user", "assistant")


class TemplateError(HearthError):
    """A template that could not be compiled or rendered; the message names the model."""


@dataclass(frozen=True)
class Message:
    """One chat message as the template sees it."""

    role: str
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; expected one of {', '.join(ROLES)}")


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
        autoescape=False,
        undefined=jinja2.StrictUndefined,
    )
    # Hugging Face chat templates call raise_exception() to reject bad conversations.
    env.globals["raise_exception"] = _raise_exception
    return env


_ENV = _environment()


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

    @cached_property
    def _compiled(self) -> jinja2.Template:
        try:
            return _ENV.from_string(self.jinja)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"prompt template {self.name!r} is not valid Jinja (line {exc.lineno}): "
                f"{exc.message}"
            ) from exc

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
    ) -> str:
        """Render a conversation to the exact prompt string, byte for byte."""
        msgs = list(messages)
        if msgs and msgs[0].role == "system" and not self.supports_system:
            msgs = msgs[1:]
        context: dict[str, Any] = dict(self.extra_context)
        context.update(
            messages=[{"role": m.role, "content": m.content} for m in msgs],
            add_generation_prompt=add_generation_prompt,
            bos_token=bos_token,
            eos_token=eos_token,
        )
        who = f" for {model_name}" if model_name else ""
        try:
            return self._compiled.render(context)
        except TemplateError as exc:
            raise TemplateError(f"prompt template {self.name!r}{who} refused to render: {exc}") from exc
        except SecurityError as exc:
            raise TemplateError(
                f"prompt template {self.name!r}{who} tried something unsafe and was stopped: {exc}"
            ) from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"prompt template {self.name!r}{who} failed to render: {exc}") from exc
        except (TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:
            raise TemplateError(
                f"prompt template {self.name!r}{who} failed to render: {type(exc).__name__}: {exc}"
            ) from exc


def conversation(system: str | None, turns: Sequence[str]) -> list[Message]:
    """Build messages from an optional system text and alternating user/assistant turns."""
    messages: list[Message] = []
    if system is not None:
        messages.append(Message("system", system))
    for index, text in enumerate(turns):
        messages.append(Message("user" if index % 2 == 0 else "assistant", text))
    return messages
