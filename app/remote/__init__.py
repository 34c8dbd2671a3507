"""Remote engines: OpenAI-compatible endpoints as model sources for the chat window and `hearth chat`."""
