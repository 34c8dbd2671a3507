"""What is installed and how to run it: one scan over catalogue variants, conversions, imported and opened files."""

from __future__ import annotations

from app.library.installed import InstalledModel, installed_models, remote_models, resolve_model_path

__all__ = ["InstalledModel", "installed_models", "remote_models", "resolve_model_path"]
