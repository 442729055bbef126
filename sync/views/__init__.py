"""Webhook receivers and the sync pages. Views stay thin: verify, persist, enqueue on commit, answer."""
