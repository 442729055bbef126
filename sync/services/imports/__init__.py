"""Importing Xero's directory and catalogue into Bitrix24: contacts -> companies, items -> products.

A run is a SyncJob (IMPORT_CONTACTS / IMPORT_ITEMS) started by an admin's button
(import_job_start) and executed by sync.tasks.imports.import_run_task. It may run twice (a worker
dies, the sweeper re-sends): every write is found again through its link (ContactLink / ItemLink),
and a record Bitrix24 already has but we lost the link to is found by its external id
(ORIGINATOR_ID "xero" + ORIGIN_ID = ContactID on companies, xmlId "xero:<ItemID>" on products), so a
second run updates instead of duplicating. Content that has not changed since the last import
(canonical hash) is skipped without a Bitrix24 write.

Progress lives in Redis under the job id (SyncJob has no progress columns); the final summary is
also written to the sync log, so it outlives Redis.

One module per job: progress.py (the summary and its progress), run.py (start, claim, run),
contacts.py and items.py (the two imports), common.py (what they share).
"""

from sync.services.imports.contacts import contacts_import
from sync.services.imports.items import items_import
from sync.services.imports.progress import ImportRefused, ImportSummary, import_progress, import_progress_write
from sync.services.imports.run import CONTACTS_ALL, CONTACTS_CUSTOMERS, import_job_claim, import_job_start, import_run

__all__ = [
    "CONTACTS_ALL",
    "CONTACTS_CUSTOMERS",
    "ImportRefused",
    "ImportSummary",
    "contacts_import",
    "import_job_claim",
    "import_job_start",
    "import_progress",
    "import_progress_write",
    "import_run",
    "items_import",
]
