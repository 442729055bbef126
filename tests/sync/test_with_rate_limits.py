"""A round trip with both services' rate limits on (`/_sandbox/limits`): the sync tests otherwise run
with them off, so this subset shows the connector's own throttles keep it under Bitrix24's leaky
bucket (2/s, burst 50: settings/performance/limits.md) and Xero's 60 calls a minute and 5 at once,
and that nothing is lost or doubled when it waits."""

from __future__ import annotations

import pytest

from sync.models import InvoiceLink
from tests.sync.conftest import wait_for
from tests.sync.test_pull_e2e import PAID, stage_of, wired, xero_status  # noqa: F401 - fixture
from tests.sync.test_push_e2e import new_invoice, xero_invoices

pytestmark = pytest.mark.django_db(transaction=True)


def test_invoices_go_to_xero_and_a_payment_comes_back_with_both_rate_limits_on(
    wired,  # noqa: F811
    worker,
    sandbox,
    b24,
):
    sandbox.limits(True, time_scale=1.0)
    company_id = b24.call("crm.company.add", {"fields": {"TITLE": "Throttled Traders Ltd"}})
    ids = [new_invoice(b24, company_id, title=f"Order {n}") for n in range(3)]

    pushed = wait_for(lambda: len(xero_invoices(sandbox, wired)) == 3 and xero_invoices(sandbox, wired), timeout=60)
    assert sorted(inv["Reference"] for inv in pushed) == [f"Order {n} (final)" for n in range(3)]
    link = wait_for(
        lambda: InvoiceLink.objects.filter(bitrix24_id=ids[0], xero_invoice_id__isnull=False).first(), timeout=30
    )
    xero_status(sandbox, link, "AUTHORISED")  # pushed as drafts; Xero pays only approved invoices
    sandbox.xero_pay(str(link.xero_invoice_id))
    wait_for(lambda: stage_of(wired, ids[0]) == PAID, timeout=40, what="the Paid stage")

    refused = [c for c in sandbox.calls() if c["status"] in (429, 503) and not c["fault"]]
    assert refused == [], refused  # waited its turn instead of being refused
    assert len(xero_invoices(sandbox, wired)) == 3
