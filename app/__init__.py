"""Hearth: chat with large language models on your own machine, offline."""

__version__ = "0.1.0"
