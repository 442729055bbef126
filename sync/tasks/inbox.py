"""Processing one inbox row: thin, the service does the work (sync.services.inbox)."""

from __future__ import annotations

from celery import shared_task

from sync.services.inbox import inbox_event_process, inbox_process_portal


@shared_task(bind=True, name="sync.tasks.inbox.inbox_process_task", max_retries=3)
def inbox_process_task(self, event_id: int) -> str:
    try:
        return inbox_event_process(event_id)
    except Exception as exc:
        # Only our own database can fail here; retry soon, then leave it to the sweeper (the row
        # went back to `received`). Countdowns stay far below the broker's visibility timeout.
        raise self.retry(exc=exc, countdown=5 * 2**self.request.retries) from exc


@shared_task(name="sync.tasks.inbox.inbox_process_portal_task")
def inbox_process_portal_task(portal_id: int) -> dict:
    return inbox_process_portal(portal_id)
