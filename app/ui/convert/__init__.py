"""Qt adapter and widgets for converting GPTQ branches to GGUF (the service is app.convert.jobs)."""
