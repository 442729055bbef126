"""Celery tasks of the sync engine. celery_app autodiscovers `sync.tasks`, so every task module is
imported here."""

from sync.tasks import imports, inbox, pull, push, reconcile, sweeps

__all__ = ["imports", "inbox", "pull", "push", "reconcile", "sweeps"]
