"""Moved to :mod:`app.templates.prompt` (the catalogue uses templates without the engine); kept for old imports."""

from __future__ import annotations

from app.templates.prompt import *  # noqa: F403
from app.templates.prompt import Message, PromptTemplate, TemplateError, TemplateRefusal, conversation  # noqa: F401
