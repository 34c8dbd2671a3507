"""Hugging Face Hub downloads: repo refs, listings, resumable verified transfers, the download queue.

Nothing here imports Qt: the GUI adapts :class:`app.hub.queue.DownloadQueue` in ``app/ui/downloads``.
"""
