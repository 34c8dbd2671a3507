"""The chat page: conversations, the streaming conversation view, the model bar."""
