"""The Downloads page: the queue's item model, its row delegate, the Hub browser, and the page."""
