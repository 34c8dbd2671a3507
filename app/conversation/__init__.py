"""One chat's rules without Qt: history, settings, prompt building and the reply lifecycle."""
