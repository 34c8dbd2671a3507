"""The inference side of Hearth: prompt templates, GGUF metadata, and the llama.cpp worker."""
