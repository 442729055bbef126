"""Bitrix24 -> Xero: push the invoices whose PUSH_INVOICE jobs are due (ARCHITECTURE.md data flow 4).

One call of `invoices_push_pending` (pipeline.py) is one pass over up to CLAIM_LIMIT jobs of a
portal: claim the jobs, take a Redis lock per invoice (an invoice locked by another worker goes
back to pending in a second, and its link is marked dirty so the holder runs it once more), then
run the stages over a list of `Work` items (context.py), one per invoice:

    read      read.py + sources.py   invoices, product rows, unlinked clients (Bitrix24 batch rounds)
    contacts  contacts.py            find or create the Xero contact of each client, in bulk
    map       map.py                 the Xero invoice we would send, fingerprinted
    drift     drift.py               Xero's own version: force a push where it differs, or hold
    decide    decide.py              unchanged / echo, status by Xero's rules, refusals, CHECKS
    write     write.py               lost-create guard, POSTs of 50 with Idempotency-Keys
    record    record.py              Xero's answer onto the InvoiceLink (compare-and-set), log;
                                     one transaction per write batch
    payments  payments.py            pay the amount due where a stage maps to PAID

Per-invoice outcomes. Every stage settles the invoices it can through outcomes.py (finish, fail,
refuse, defer) and passes the rest on; an error is attributed to the invoices it concerns — a
failed Bitrix24 batch round to the invoices/clients of its commands, a failed contact lookup to the
invoices of that contact (chains are split down to one contact first), a failed write to its batch,
a failed payment read to the invoices it was for — and the rest of the pass goes on. Retryable
errors go back to pending with backoff honouring Retry-After (sync.services.jobs.job_failed);
permanent ones fail with the API's own words. The log entries (with each invoice's outcome) and the
jobs settled as done are stored a batch at a time (PassContext.settle: before the writes, inside
each write batch's record transaction, as leases are renewed, and when the stages end), not one
invoice at a time: a pass's database work is a few statements per batch plus each link's
compare-and-set (scripts/push_cpu.py measures it). Only a lost authorisation stops the pass (its
invoices wait for reconnection), and an unexpected exception fails what is unsettled as retryable.

Where things plug in:
- another kind of Bitrix24 invoice (old crm.invoice.*, issue 15): a source class like
  smart_invoice.SmartInvoiceSource (read rounds, client_of, stage_of, to_xero, totals_gap)
  registered in sources.SOURCES under its entity type; job targets are "<entity type>:<id>";
- a decision that keeps an invoice from Xero (hold when totals differ, issue 11): a check appended
  to decide.CHECKS that settles the item through outcomes;
- a forced re-push (issue 16): the drift stage sets item.gate (force / hold); decide then sends
  the invoice even when our fingerprint matches the last push.
"""

from sync.services.push.context import PushReport, Work
from sync.services.push.pipeline import CLAIM_LIMIT, invoices_push_pending

__all__ = ["CLAIM_LIMIT", "PushReport", "Work", "invoices_push_pending"]
