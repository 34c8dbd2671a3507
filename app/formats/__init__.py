"""File formats read without loading a model (GGUF headers), below the catalogue and the engine."""
