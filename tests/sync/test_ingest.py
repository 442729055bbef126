"""The ingest path (issue 14 item 4, issue 17 item 4): both inbound endpoints validate with DRF
serializers (a malformed delivery is a 400 naming the field, and nothing is stored), store a
delivery once however often and however concurrently it comes, and the worker turns a burst into
one job per invoice in batches, a bad row not holding up the others.

The requests go through Django's whole stack (middleware included) onto real PostgreSQL and Redis;
nothing of ours is replaced.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.db import close_old_connections, connection
from django.test import Client

from accounts.models import Portal
from connector.rows import row_by
from integrations.xero.webhooks import xero_signature
from sync.models import InboxEvent, Source, SyncJob
from sync.services.inbox import inbox_process_portal
from sync.services.jobs import task_send_coalesced
from tests.factories import ready_portal
from tests.sync.conftest import queued_tasks, xero_body, xero_event

TOKEN = "app-token-of-the-portal"
KEY = "ingest-tests-webhook-key"
INBOX_TASK = "sync.tasks.inbox.inbox_process_portal_task"
R1, R2 = "0b6d1f3e-0000-4000-8000-000000000001", "0b6d1f3e-0000-4000-8000-000000000002"


@pytest.fixture
def portal(transactional_db, settings) -> Portal:
    settings.XERO_WEBHOOK_KEY = KEY
    return ready_portal(domain="ingest.bitrix24.com", application_token=TOKEN)


def event_form(portal: Portal, *, invoice_id: int = 7, ts: int = 1_723_538_517, **changes: str) -> dict[str, str]:
    form = {
        "event": "ONCRMDYNAMICITEMUPDATE",
        "event_handler_id": "3",
        "data[FIELDS][ID]": str(invoice_id),
        "data[FIELDS][ENTITY_TYPE_ID]": "31",
        "ts": str(ts),
        "auth[domain]": portal.domain,
        "auth[client_endpoint]": f"https://{portal.domain}/rest/",
        "auth[server_endpoint]": "https://oauth.bitrix.info/rest/",
        "auth[member_id]": portal.member_id,
        "auth[application_token]": TOKEN,
    }
    return form | changes


def post_event(form: dict[str, str]):
    return Client().post("/bitrix24/events/", data=form)


def post_webhook(body: bytes, *, key: str = KEY):
    return Client().post(
        "/xero/webhooks/",
        data=body,
        content_type="application/json",
        headers={"x-xero-signature": xero_signature(key, body)},
    )


def tenant_of(portal: Portal) -> str:
    return portal.xero_connection.tenant_id


# --- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"auth[client_endpoint]": "javascript:alert(1)"}, "client_endpoint"),
        ({"auth[member_id]": ""}, "member_id"),
        ({"ts": "yesterday"}, "ts"),
        ({"event_handler_id": "1.5e3"}, "event_handler_id"),
        ({"auth[user_id]": "x"}, "user_id"),
        ({"data": "not an object"}, "data"),
    ],
)
def test_a_malformed_event_is_answered_400_naming_the_field_and_nothing_is_stored(portal, change, field):
    form = event_form(portal)
    if change == {"data": "not an object"}:
        form = {k: v for k, v in form.items() if not k.startswith("data[")} | change
    else:
        form |= change

    answer = post_event(form)

    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "malformed event"
    assert field in json.dumps(body["fields"])
    assert not InboxEvent.objects.exists()


def test_an_event_without_its_auth_block_is_a_400_not_a_refusal(portal):
    form = {k: v for k, v in event_form(portal).items() if not k.startswith("auth[")}

    answer = post_event(form)

    assert answer.status_code == 400 and "auth" in answer.json()["fields"]
    assert not InboxEvent.objects.exists()


def test_a_well_formed_event_with_a_wrong_token_is_refused_401_and_nothing_is_stored(portal):
    answer = post_event(event_form(portal, **{"auth[application_token]": TOKEN + "x"}))

    assert answer.status_code == 401
    assert not InboxEvent.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[]", "body"),
        (b'{"events": {}}', "events"),
        (json.dumps({"events": [{"resourceId": "R1"}]}).encode(), "tenantId"),
        (json.dumps({"events": [], "firstEventSequence": -1}).encode(), "firstEventSequence"),
        (json.dumps({"events": [], "lastEventSequence": True}).encode(), "lastEventSequence"),
    ],
)
def test_a_signed_but_malformed_webhook_is_answered_400_naming_the_field_and_nothing_is_stored(portal, body, field):
    answer = post_webhook(body)

    assert answer.status_code == 400
    assert field in json.dumps(answer.json()["fields"])
    assert not InboxEvent.objects.exists()


def test_a_malformed_body_with_a_bad_signature_is_refused_401_before_it_is_read(portal):
    answer = Client().post(
        "/xero/webhooks/", data=b"{not json", content_type="application/json", headers={"x-xero-signature": "AAAA"}
    )

    assert answer.status_code == 401 and answer.content == b""


def test_an_intent_to_receive_probe_is_answered_200_empty_and_a_badly_signed_one_401(portal):
    probe = xero_body([], first=0)

    good = post_webhook(probe)
    bad = post_webhook(probe, key="another-key")

    assert (good.status_code, good.content) == (200, b"")
    assert (bad.status_code, bad.content) == (401, b"")
    assert not InboxEvent.objects.exists()


# --- the short middleware path ------------------------------------------------------------------


def test_the_inbound_answers_keep_what_every_request_gets_and_set_no_cookie(portal):
    event = post_event(event_form(portal))
    webhook = post_webhook(xero_body([xero_event(tenant_of(portal))]))

    for answer in (event, webhook):
        assert answer.status_code == 200
        assert answer["X-Request-ID"] and answer["X-Frame-Options"] == "DENY"
        assert answer["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware
        assert "Set-Cookie" not in answer
    assert InboxEvent.objects.count() == 2


def test_an_unknown_host_a_nul_character_and_a_get_are_refused_before_the_view(portal):
    unknown_host = Client().post("/bitrix24/events/", data=event_form(portal), headers={"host": "evil.example"})
    nul = post_event(event_form(portal, **{"auth[domain]": "a\x00b"}))
    get = Client().get("/xero/webhooks/")

    assert [unknown_host.status_code, nul.status_code, get.status_code] == [400, 400, 405]
    assert not InboxEvent.objects.exists()


def test_a_delivery_that_meets_a_dead_kept_connection_is_received_again_on_a_fresh_one(portal):
    """The kept connection is not checked before each delivery (no SELECT 1): one that died meanwhile
    (here its backend is terminated, as a database restart or failover would) fails the first
    statement, and the delivery is received once more on a new connection, not lost to a 500."""
    assert post_event(event_form(portal, invoice_id=31)).status_code == 200  # a connection is kept
    old_backend = connection.connection.info.backend_pid
    with psycopg.connect(**_libpq_params(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [old_backend])

    event = post_event(event_form(portal, invoice_id=32))
    webhook = post_webhook(xero_body([xero_event(tenant_of(portal))]))

    assert [event.status_code, webhook.status_code] == [200, 200]
    assert connection.connection.info.backend_pid != old_backend
    assert InboxEvent.objects.filter(source=Source.BITRIX24, payload__id=32).count() == 1
    assert InboxEvent.objects.filter(source=Source.XERO).count() == 1


def _libpq_params() -> dict:
    settings_dict = connection.settings_dict
    return {
        "dbname": settings_dict["NAME"],
        "user": settings_dict["USER"],
        "password": settings_dict["PASSWORD"],
        "host": settings_dict["HOST"],
        "port": settings_dict["PORT"],
    }


# --- stored once --------------------------------------------------------------------------------------


def test_an_event_delivered_eight_times_at_once_is_stored_once_and_every_delivery_answered_200(portal):
    form = event_form(portal, invoice_id=24)

    def deliver(_: int) -> int:
        try:
            return post_event(form).status_code
        finally:
            close_old_connections()  # each thread's own connection

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(deliver, range(8)))

    assert statuses == [200] * 8
    assert InboxEvent.objects.filter(source=Source.BITRIX24).count() == 1


def test_a_webhook_delivered_twice_and_an_event_repeated_inside_one_body_are_stored_once(portal):
    event = xero_event(tenant_of(portal), R1)
    body = xero_body([event, event, xero_event(tenant_of(portal), R2)])

    assert post_webhook(body).status_code == 200
    assert post_webhook(body).status_code == 200

    assert sorted(row.payload["resourceId"] for row in InboxEvent.objects.all()) == [R1, R2]
    assert set(InboxEvent.objects.values_list("status", flat=True)) == {InboxEvent.Status.RECEIVED}


def test_a_burst_asks_for_processing_a_few_times_not_once_per_event(portal, monkeypatch):
    # A window longer than the burst: the rule checked is one send at once and one trailing send
    # per window, whatever the speed of the machine.
    monkeypatch.setattr("sync.services.jobs.dispatch.DISPATCH_WINDOW_MS", 60_000)
    for n in range(20):
        assert post_event(event_form(portal, ts=1_700_000_000 + n)).status_code == 200

    sent = [(m["task"], m["argsrepr"]) for m in queued_tasks()]
    assert sent == [(INBOX_TASK, f"[{portal.pk}]")] * 2
    assert InboxEvent.objects.count() == 20


def test_a_process_remembers_the_trailing_send_it_knows_of_and_asks_redis_nothing_until_it_is_due(portal, monkeypatch):
    from connector.coordination import redis_client

    monkeypatch.setattr("sync.services.jobs.dispatch.DISPATCH_WINDOW_MS", 60_000)
    key = f"test:coalesce:{portal.pk}"
    assert task_send_coalesced(key, INBOX_TASK, [portal.pk])  # at once
    assert task_send_coalesced(key, INBOX_TASK, [portal.pk])  # the trailing send, due in a window
    # Were this process to ask Redis again it would find no marker and send: it does not ask.
    redis_client().delete(key, f"{key}:trailing")

    assert not task_send_coalesced(key, INBOX_TASK, [portal.pk])
    assert len(queued_tasks()) == 2


# --- processed in batches -----------------------------------------------------------------------------


def test_a_burst_about_a_few_invoices_ends_as_done_rows_and_one_job_per_invoice(portal):
    for n in range(30):
        post_event(event_form(portal, invoice_id=100 + n % 3, ts=1_700_000_000 + n))
    events = [
        xero_event(tenant_of(portal), (R1, R2)[n % 2]) | {"eventDateUtc": f"2026-12-06T06:00:0{n}.000"}
        for n in range(4)
    ]
    post_webhook(xero_body(events))

    counts = inbox_process_portal(portal.pk)

    assert counts == {"done": 34}
    assert set(InboxEvent.objects.values_list("status", flat=True)) == {InboxEvent.Status.DONE}
    pushes = SyncJob.objects.filter(portal=portal, kind=SyncJob.Kind.PUSH_INVOICE)
    pulls = SyncJob.objects.filter(portal=portal, kind=SyncJob.Kind.PULL_STATUS)
    assert sorted(pushes.values_list("target", flat=True)) == ["31:100", "31:101", "31:102"]
    assert sorted(pulls.values_list("target", flat=True)) == [R1, R2]


def test_a_row_that_cannot_be_processed_does_not_hold_up_the_others(portal):
    post_event(event_form(portal, invoice_id=5))
    # A row whose payload lost its invoice id (written by an older version, or by hand).
    broken = InboxEvent.objects.create(
        portal=portal,
        source=Source.BITRIX24,
        dedupe_key="b24:broken",
        event_type="ONCRMDYNAMICITEMUPDATE",
        payload={"event": "ONCRMDYNAMICITEMUPDATE", "entity_type_id": 31},
    )
    post_event(event_form(portal, invoice_id=6, ts=1_723_538_600))

    counts = inbox_process_portal(portal.pk)

    assert counts == {"done": 2, "error": 1}
    broken.refresh_from_db()
    assert broken.status == InboxEvent.Status.RECEIVED and broken.attempts == 1 and "KeyError" in broken.error
    assert sorted(SyncJob.objects.values_list("target", flat=True)) == ["31:5", "31:6"]


def test_a_burst_while_setup_is_pending_is_kept_as_held_jobs(portal):
    from sync.models import SyncSettings
    from sync.services.gate import HELD_UNTIL

    SyncSettings.objects.filter(portal=portal).update(setup_completed=False)
    for n in range(5):
        post_event(event_form(portal, invoice_id=9, ts=1_700_000_000 + n))

    assert inbox_process_portal(portal.pk) == {"done": 5}
    job = SyncJob.objects.get()
    assert job.not_before == HELD_UNTIL
    assert set(InboxEvent.objects.values_list("error", flat=True)) == {"held until Setup is saved"}


def test_a_batch_drops_each_echo_of_a_linked_invoice_with_its_log_line_and_reads_a_newer_change(portal):
    from datetime import UTC, datetime

    from sync.models import SyncLogEntry
    from tests.factories import InvoiceLinkFactory

    xero_id = "0b0b0b0b-0000-4000-8000-000000000001"
    InvoiceLinkFactory(
        portal=portal, xero_invoice_id=xero_id, xero_updated_at=datetime(2026, 12, 6, 6, 0, 5, tzinfo=UTC)
    )
    older = [xero_event(tenant_of(portal), xero_id) | {"eventDateUtc": f"2026-12-06T06:00:0{n}.000"} for n in range(3)]
    newer = xero_event(tenant_of(portal), xero_id) | {"eventDateUtc": "2026-12-06T06:00:09.000"}
    post_webhook(xero_body(older))

    assert inbox_process_portal(portal.pk) == {"done": 3}
    assert SyncLogEntry.objects.filter(outcome=SyncLogEntry.Outcome.ECHO_DROPPED).count() == 3
    assert not SyncJob.objects.exists()

    post_webhook(xero_body([newer]))
    assert inbox_process_portal(portal.pk) == {"done": 1}
    assert SyncJob.objects.get().target == xero_id


# --- the plain lookup --------------------------------------------------------------------------------


def test_row_by_loads_the_named_fields_decrypted_and_the_others_on_access(portal):
    Portal.objects.filter(pk=portal.pk).update(scope="crm")  # plain column, read lazily below
    loaded = row_by(Portal, "member_id", portal.member_id, fields=("application_token", "status"))

    assert loaded is not None and loaded.pk == portal.pk
    assert loaded.application_token == TOKEN  # decrypted like the ORM does
    assert loaded.get_deferred_fields() >= {"scope", "access_token"}
    assert loaded.scope == "crm"
    assert row_by(Portal, "member_id", "no-such-member", fields=("status",)) is None


# --- under gunicorn, as in production -----------------------------------------------------------------


def test_gunicorn_connects_its_threads_first_and_leaves_accepted_deliveries_out_of_the_access_log(portal, settings):
    import socket
    import subprocess
    import sys

    import requests

    from tests.conftest import ROOT, _worker_env

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = _worker_env() | {"XERO_WEBHOOK_KEY": KEY, "DEBUG": "1", "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "2"}
    others_before = _other_backends()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"]
        + ["connector.wsgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Before any request, each of the worker's 2 threads has opened its database connection
        # (gunicorn.conf.py post_worker_init).
        deadline = time.monotonic() + 60
        while len(_other_backends() - others_before) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_other_backends() - others_before) == 2
        for _ in range(150):  # the worker imports the app first (seconds on a busy machine)
            try:
                requests.get(f"{base}/health/", timeout=10)
                break
            except requests.RequestException:
                time.sleep(0.2)
        accepted = requests.post(f"{base}/bitrix24/events/", data=event_form(portal), timeout=10)
        another = requests.post(f"{base}/bitrix24/events/", data=event_form(portal, ts=1), timeout=10)
        forged = requests.post(
            f"{base}/bitrix24/events/", data=event_form(portal, **{"auth[application_token]": "no"}), timeout=10
        )
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert (accepted.status_code, another.status_code, forged.status_code) == (200, 200, 401)
    access = [line for line in output.splitlines() if '"gunicorn.access"' in line]
    assert any('"path": "/health/"' in line for line in access)
    assert [json.loads(line)["status"] for line in access if "/bitrix24/events/" in line] == [401]
    assert InboxEvent.objects.count() == 2


def _other_backends() -> set[int]:
    from django.db import connection as db

    with db.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
        return {pid for (pid,) in cursor.fetchall()}
