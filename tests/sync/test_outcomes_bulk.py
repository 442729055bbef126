"""A batch of sync-log entries keeps each invoice's outcome (sync.services.outcomes) exactly as the
same entries written one at a time would — in their order, a skip leaving a state a person must act
on as it is — with one SELECT and one upsert for the whole batch (the push writes its log a batch at
a time, issue 14). PostgreSQL, no sandbox."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sync.models import Direction, InvoiceOutcome, SyncLogEntry, Trigger
from sync.services.log import sync_log_entry, sync_log_write, sync_log_write_many
from tests.factories import ready_portal

pytestmark = pytest.mark.django_db(transaction=True)

Outcome = SyncLogEntry.Outcome
State = InvoiceOutcome.State


def entry(portal, bitrix24_id: int, outcome: str, *, direction: str = Direction.PUSH, **details) -> SyncLogEntry:
    return sync_log_entry(
        portal=portal,
        direction=direction,
        trigger=Trigger.EVENT,
        outcome=outcome,
        bitrix24_id=bitrix24_id,
        message=f"{outcome} {bitrix24_id}",
        details=details or None,
    )


def states(portal) -> dict[tuple[int, int], tuple[str, str]]:
    return {
        (row.bitrix24_entity_type, row.bitrix24_id): (row.state, row.reason)
        for row in InvoiceOutcome.objects.filter(portal=portal)
    }


def test_a_batch_sets_the_same_outcomes_as_its_entries_one_at_a_time_with_two_statements_for_all_of_them():
    one_by_one, batched = ready_portal(domain="one.bitrix24.com"), ready_portal(domain="batch.bitrix24.com")

    def entries(portal) -> list[SyncLogEntry]:
        return [
            entry(portal, 1, Outcome.CREATED),
            entry(portal, 2, Outcome.REFUSED, rule="paid_to_draft"),
            entry(portal, 2, Outcome.SKIPPED_UNCHANGED),  # after a refusal in the same batch: stays refused
            entry(portal, 3, Outcome.RETRYING, attempt=2, next_attempt_at="2026-01-01T00:00:10+00:00"),
            entry(portal, 3, Outcome.SKIPPED_UNCHANGED),  # clears a retry
            entry(portal, 4, Outcome.ECHO_DROPPED, direction=Direction.PULL),  # the pull's skip: says nothing
            entry(portal, 5, Outcome.FAILED, entity_type=5),  # an old invoice
            entry(portal, 1, Outcome.PAYMENT_RECORDED),
        ]

    for one in entries(one_by_one):
        sync_log_write(
            portal=one.portal,
            direction=one.direction,
            trigger=one.trigger,
            outcome=one.outcome,
            bitrix24_id=one.bitrix24_id,
            message=one.message,
            details=one.details,
        )
    with CaptureQueriesContext(connection) as captured:
        sync_log_write_many(entries(batched))

    assert states(batched) == {
        (31, 1): (State.ON_XERO, ""),
        (31, 2): (State.REFUSED, f"{Outcome.REFUSED} 2"),
        (31, 3): (State.ON_XERO, ""),
        (5, 5): (State.FAILED, f"{Outcome.FAILED} 5"),
    }
    assert states(one_by_one) == states(batched)
    # The INSERT of the entries, the SELECT of the skipped invoices' outcomes, the upsert.
    statements = [q["sql"] for q in captured.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    assert len(statements) == 3
    refused = InvoiceOutcome.objects.get(portal=batched, bitrix24_id=2)
    assert refused.rule == "paid_to_draft"
    assert refused.log_entry_id == SyncLogEntry.objects.get(portal=batched, bitrix24_id="2", outcome=Outcome.REFUSED).pk


def test_a_skip_leaves_a_state_stored_before_the_batch_as_it_is_and_clears_a_failure():
    portal = ready_portal(domain="before.bitrix24.com")
    sync_log_write_many([entry(portal, 1, Outcome.HELD), entry(portal, 2, Outcome.FAILED)])

    sync_log_write_many([entry(portal, 1, Outcome.SKIPPED_UNCHANGED), entry(portal, 2, Outcome.ECHO_DROPPED)])

    assert states(portal) == {(31, 1): (State.HELD, f"{Outcome.HELD} 1"), (31, 2): (State.ON_XERO, "")}


def test_entries_of_two_portals_in_one_batch_each_set_their_own_portals_outcome():
    first, second = ready_portal(domain="first.bitrix24.com"), ready_portal(domain="second.bitrix24.com")
    sync_log_write_many([entry(first, 9, Outcome.REFUSED)])

    sync_log_write_many([entry(first, 9, Outcome.SKIPPED_UNCHANGED), entry(second, 9, Outcome.SKIPPED_UNCHANGED)])

    assert states(first) == {(31, 9): (State.REFUSED, f"{Outcome.REFUSED} 9")}
    assert states(second) == {(31, 9): (State.ON_XERO, "")}
