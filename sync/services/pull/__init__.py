"""Xero -> Bitrix24: read invoice statuses from Xero and move the Bitrix24 invoices' stages.

Two ways in, one way out:

- `statuses_pull_pending` serves PULL_STATUS jobs (one per InvoiceID a Xero webhook named): the
  linked ones are read with GET /Invoices?IDs=<50 ids>&page=1, one call per 50.
- `statuses_pull_recent` serves the "Update from Xero" button and the 5-minute sweep: GET /Invoices
  with If-Modified-Since = the portal's watermark minus an overlap, 1000 a page, oldest first.
- Both hand what they read to `apply.invoices_apply`: drop echoes, map the Xero status to a stage,
  write all stage changes in Bitrix24 `batch` calls of 50 crm.item.update, and record on the link
  what was written.

The echo rule (style-and-reliability.md B.4), content-based because neither side says who changed
what: `InvoiceLink.last_pulled_hash` = invoice_pull_fingerprint(Xero status, AmountPaid,
stage_id=the stage the invoice is on as far as we know). Whoever last synced the invoice stores it:
the push engine after writing to Xero, this package after moving a stage. An invoice read from Xero
whose fingerprint (with `last_bitrix24_stage_id`) equals it is the echo of our own write, or a
change we already acted on, or one that does not concern us (new lines): nothing is written. And
after we move a stage, `last_bitrix24_stage_id` holds the new stage, so the ONCRMDYNAMICITEMUPDATE
that our own crm.item.update raises finds nothing new for the push engine.

The package, one job a module: `webhooks` (PULL_STATUS jobs), `recent` (button and sweep), `apply`
(lock, write stages, payments), `decide` (echo / record / move, and recording on the link), `gate`
(may this portal pull now, one pull per portal), `state` (what is read, what is reported).
"""

from sync.services.pull.recent import statuses_pull_recent
from sync.services.pull.state import PullReport, XeroInvoiceState
from sync.services.pull.webhooks import statuses_pull_pending

__all__ = ["PullReport", "XeroInvoiceState", "statuses_pull_pending", "statuses_pull_recent"]
