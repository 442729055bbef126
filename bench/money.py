"""Exact or held (issue 11): the seeded corpus of awkward invoices through the whole connector.

Makes BENCH_MONEY_INVOICES (1,000) invoices of tests/sync/money_corpus.py in the sandbox portal
through REST (before the app is installed, so no events), installs and connects the app, adds the
corpus's 7.5% and 20% sales tax rates to the Xero organisation (as a Xero user would) and maps the
rates, clicks "Create / Edit on Xero" for all of them and lets the real worker push them.

Then every invoice must be either in Xero with Total and TotalTax equal to Bitrix24's opportunity
and taxValue to the cent (a credit note when below zero), or held with its reason (a "held" log
entry with both amounts and the cause). Prints the counts: exact / held by cause, and any invoice
sent with a difference (must be 0).
"""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal

import requests

from bench._harness import Bitrix24User, Stack, env_int, push_click, table, verdict, wait_push_jobs

CENT = Decimal("0.01")


def run() -> dict:
    from tests.sync.money_corpus import EXTRA_TAX_RATES, TAX_MAP, generate

    count = env_int("BENCH_MONEY_INVOICES", 1000)
    corpus = generate(count)
    with Stack() as stack:
        admin = Bitrix24User(stack, stack.user())
        started = time.monotonic()
        company = int(admin.call("crm.company.add", {"fields": {"TITLE": "Corpus Customer Ltd"}}))
        ids: dict[int, object] = {}
        for invoice in corpus:
            fields = {"title": f"Corpus {invoice.number}", "companyId": company, "currencyId": invoice.currency}
            item = admin.call("crm.item.add", {"entityTypeId": 31, "fields": fields})
            invoice_id = int(item["item"]["id"])
            admin.call(
                "crm.item.productrow.set", {"ownerType": "SI", "ownerId": invoice_id, "productRows": invoice.rows}
            )
            if invoice.manual_amount is not None:
                admin.call(
                    "crm.item.update",
                    {
                        "entityTypeId": 31,
                        "id": invoice_id,
                        "fields": {"isManualOpportunity": "Y", "opportunity": invoice.manual_amount},
                    },
                )
            ids[invoice_id] = invoice
        rows = sum(len(i.rows) for i in corpus)
        print(f"   made {count} invoices ({rows} rows) in {time.monotonic() - started:.1f} s", flush=True)

        portal = stack.setup(xero_webhooks=False)
        from sync.models import SyncSettings

        tenant = portal.xero_connection.tenant_id
        requests.post(
            f"{stack.sandbox_url}/_sandbox/xero/tax_rates",
            json={"TaxRates": EXTRA_TAX_RATES, "tenant_id": tenant},
            timeout=10,
        ).raise_for_status()
        SyncSettings.objects.filter(portal=portal).update(tax_types=TAX_MAP, setup_completed=True)

        started = time.monotonic()
        push_click(portal, list(ids), requested_by=admin.id)
        jobs = wait_push_jobs(portal, count, timeout=1800)
        wall = time.monotonic() - started
        state = requests.get(f"{stack.sandbox_url}/_sandbox/state", timeout=300).json()
        counts, differences = _check(portal, ids, state)

    exact = counts.get("exact", 0) + counts.get("exact (credit note)", 0)
    table(
        [
            ("sent with a difference", differences, 0, "-", verdict(differences == 0)),
            ("exact in Xero", exact, f"of {count}", f"{exact / count:.1%}", "-"),
        ]
    )
    for key, value in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"   {key:<45} {value}")
    print(f"   jobs: {jobs}; wall time click -> all jobs finished: {wall:.1f} s", flush=True)
    return {"exact": exact, "differences": differences, **counts}


def _check(portal, ids: dict, state: dict) -> tuple[Counter, int]:
    from sync.models import InvoiceLink, SyncLogEntry

    bitrix24 = {int(i["id"]): i for i in state["bitrix24"]["invoices"]}
    org = next(o for o in state["xero"]["organisations"] if o["tenant_id"] == portal.xero_connection.tenant_id)
    documents = {d["InvoiceID"]: d for d in org["invoices"]}
    documents.update({d["CreditNoteID"]: d for d in org.get("credit_notes", [])})
    links = {link.bitrix24_id: link for link in InvoiceLink.objects.filter(portal=portal)}
    held = {}
    for entry in SyncLogEntry.objects.filter(portal=portal, outcome=SyncLogEntry.Outcome.HELD).order_by("created_at"):
        held[int(entry.bitrix24_id)] = entry
    counts: Counter = Counter()
    differences = 0
    for invoice_id in ids:
        link = links.get(invoice_id)
        if link is not None and link.xero_invoice_id and not link.last_error:
            sent = documents.get(str(link.xero_invoice_id))
            sign = -1 if link.xero_type == "ACCRECCREDIT" else 1
            b24 = bitrix24[invoice_id]
            expected = (
                sign * Decimal(str(b24["opportunity"])).quantize(CENT),
                sign * Decimal(str(b24["taxValue"])).quantize(CENT),
            )
            got = (Decimal(str(sent["Total"])).quantize(CENT), Decimal(str(sent["TotalTax"])).quantize(CENT))
            if got != expected:
                differences += 1
                print(f"   DIFFERENCE invoice {invoice_id}: Xero {got}, Bitrix24 {expected}", flush=True)
            counts["exact (credit note)" if sign < 0 else "exact"] += 1
        elif invoice_id in held:
            counts[f"held: {held[invoice_id].details.get('cause_label', '?')}"] += 1
        else:
            reason = (link.last_error if link else "no link")[:120]
            counts[f"other: {reason}"] += 1
    return counts, differences
