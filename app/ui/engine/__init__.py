"""Qt adapters over the inference engine: signals from the worker process, coalesced for the GUI."""
