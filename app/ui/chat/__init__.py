"""The chat page: conversations, the streaming conversation view, the model bar."""

from __future__ import annotations

from app.ui.chat.pyside_guard import protect_singletons

protect_singletons()
