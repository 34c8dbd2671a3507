"""The inference side of Hearth: offload planning, sampling, chat formats, and the llama.cpp worker."""
