"""The sync engine's tables. Every row belongs to one Portal; every query is scoped to it.

- mapping.py: the user's choices (stage map both ways, SyncSettings)
- links.py: which Bitrix24 record is which Xero record (the constraints that keep sync exactly-once)
- inbox.py / jobs.py: the PostgreSQL inbox (webhook events) and outbox (jobs); Celery is the fast path
- log.py: what happened, for the user and the operator
- outcomes.py: where each invoice stands (On Xero / Retrying / Failed / Refused / Held / Changed)
"""

from sync.models.choices import Direction, Source, Trigger, XeroStatus
from sync.models.inbox import InboxEvent
from sync.models.jobs import SyncJob
from sync.models.links import ContactLink, InvoiceLink, ItemLink, ReconciliationRun
from sync.models.log import SyncLogEntry
from sync.models.mapping import StageMapping, SyncSettings, XeroStatusMapping
from sync.models.outcomes import InvoiceOutcome

__all__ = [
    "ContactLink",
    "Direction",
    "InboxEvent",
    "InvoiceLink",
    "InvoiceOutcome",
    "ItemLink",
    "ReconciliationRun",
    "Source",
    "StageMapping",
    "SyncJob",
    "SyncLogEntry",
    "SyncSettings",
    "Trigger",
    "XeroStatus",
    "XeroStatusMapping",
]
