"""Hearth as an OpenAI-compatible server (``hearth serve`` and the app's API switch)."""
