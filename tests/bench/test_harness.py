"""The benches' own measuring tools: a figure is only as honest as what counts it."""

from __future__ import annotations

from bench._harness import CallWatcher


class CallLog:
    """The sandbox's call log as GET /_sandbox/calls?since=N answers it: every call with an id above
    N, in flight ones included (status and `finished` empty until the answer went out)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def start(self, call_id: int) -> dict:
        call = {"id": call_id, "status": None, "finished": None}
        self.calls.append(call)
        return call

    def since(self, mark: int) -> list[dict]:
        return [dict(c) for c in self.calls if c["id"] > mark]


def test_a_call_in_flight_at_one_poll_is_handed_out_once_it_has_finished():
    log = CallLog()
    for n in (1, 2, 3):
        log.start(n)
    log.calls[0].update(status=200, finished=10.0)
    log.calls[2].update(status=200, finished=10.2)
    watcher = CallWatcher(log.since, 0)

    assert [c["id"] for c in watcher.finished()] == [1, 3]  # 2 is still in flight

    log.calls[1].update(status=200, finished=10.5)
    log.start(4)
    assert [(c["id"], c["finished"]) for c in watcher.finished()] == [(2, 10.5)]
    log.calls[3].update(status=200, finished=11.0)
    assert [c["id"] for c in watcher.finished()] == [4]
    assert watcher.finished() == []


def test_calls_before_the_mark_are_not_handed_out():
    log = CallLog()
    for n in (1, 2):
        log.start(n).update(status=200, finished=1.0)

    assert [c["id"] for c in CallWatcher(log.since, 1).finished()] == [2]


def test_a_push_failed_because_its_invoice_is_held_is_not_a_failed_job_of_the_run(db):
    """bench/__main__.py fails any bench that leaves failed jobs; an invoice held with its reason
    (money that would differ) is the connector working, and `bench money` holds most of its corpus."""
    from bench._harness import failed_jobs_count
    from sync.models import InvoiceOutcome, SyncJob
    from tests.factories import SyncJobFactory, ready_portal

    portal = ready_portal(domain="harness.bitrix24.com")
    for invoice_id in (1, 2):
        SyncJobFactory(portal=portal, kind=SyncJob.Kind.PUSH_INVOICE, target=f"31:{invoice_id}", status="failed")
    SyncJobFactory(portal=portal, kind=SyncJob.Kind.PULL_STATUS, target="1", status="failed")
    assert failed_jobs_count() == 3

    InvoiceOutcome.objects.create(portal=portal, bitrix24_id=1, state=InvoiceOutcome.State.HELD, reason="rate differs")
    InvoiceOutcome.objects.create(portal=portal, bitrix24_id=2, state=InvoiceOutcome.State.FAILED, reason="refused")

    assert failed_jobs_count() == 2  # invoice 2's push and the pull are still failures
