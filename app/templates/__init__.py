"""Prompt templates: the built-in formats and each model's own Jinja, rendered within bounds (no engine needed)."""
