"""Bad input never gets a 500 (issue 8, point 6): a generated corpus of malformed requests against
every public endpoint — Bitrix24's events, installer and frame entries, Xero's webhooks and OAuth
callback, and every app page and button (signed in as an admin and as a clerk) — asserting no 5xx,
nothing stored, and a 4xx that says what was wrong.

Deterministic (a seeded generator), so a failure names a request that can be replayed. Django's test
client calls the views in-process (fast); the portal, its users and their tokens are the sandbox's,
so pages that read Bitrix24 do so over HTTP as in production. Prints the figures for the note.
"""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from django.test import Client

from accounts.models import FrameSession, Portal, XeroConnection, XeroOAuthState
from accounts.services.frame import frame_token_issue
from integrations.xero.webhooks import xero_signature
from sync.models import SyncJob, SyncLogEntry
from tests.factories import FrameSessionFactory
from tests.integrations import bitrix24_fixtures
from tests.integrations.bitrix24_fixtures import portal_from_token_data

acme_admin, b24_app = bitrix24_fixtures.acme_admin, bitrix24_fixtures.b24_app

WEBHOOK_KEY = "fuzz-webhook-key"
TARGET_REQUESTS = 2200


def _deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def _deep_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


# Values that broke (or could break) a parser, a converter or the database.
NASTY: list[str] = [
    "",
    " ",
    "\x00",
    "abc\x00def",
    "²",
    "١٢٣",  # Arabic-Indic digits: int() accepts them, PostgreSQL never sees digits
    "9" * 5000,
    "9" * 4000,
    "-1",
    "0",
    "1e999",
    "NaN",
    "18446744073709551616",
    "9223372036854775808",
    "-9223372036854775809",
    "1.5",
    "true",
    "null",
    "[]",
    "{}",
    '{"ID": "1"}',
    '{"ID": ["1"]}',
    '{"ID": {"x": 1}}',
    _deep_json(5000),
    _deep_object(3000),
    "x" * 100_000,
    "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    "\u202e",
    "😀" * 50,
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "../../etc/passwd",
    "%00",
    "%",
    "a,b,,c",
    "1,2,3,-4",
    ",".join(["7"] * 3000),
    "http://169.254.169.254/latest/meta-data/",
    "javascript:alert(1)",
    "2026-13-45",
    "0000-00-00",
    "99999-01-01",
]

EVENT_NAMES = ["ONAPPINSTALL", "ONAPPUNINSTALL", "ONCRMDYNAMICITEMUPDATE", "ONCRMINVOICEUPDATE", "ONAPPTEST", ""]
FRAME_FIELDS = [
    "AUTH_ID",
    "AUTH_EXPIRES",
    "REFRESH_ID",
    "member_id",
    "APPLICATION_TOKEN",
    "PLACEMENT",
    "PLACEMENT_OPTIONS",
    "SERVER_ENDPOINT",
    "DOMAIN",
    "status",
]
EVENT_FIELDS = [
    "event",
    "ts",
    "auth[member_id]",
    "auth[application_token]",
    "auth[access_token]",
    "auth[refresh_token]",
    "auth[expires_in]",
    "auth[expires]",
    "auth[client_endpoint]",
    "auth[domain]",
    "auth[user_id]",
    "data[FIELDS][ID]",
    "data[FIELDS][ENTITY_TYPE_ID]",
    "data[CLEAN]",
]
WEIRD_KEYS = ["a[", "a]", "a[b][", "[]", "data[FIELDS][ID][]", "data" + "[x]" * 2000, "auth", "auth[]", "\x00"]


class Fuzzer:
    def __init__(self, client: Client, rng: random.Random) -> None:
        self.client = client
        self.rng = rng
        self.sent = 0
        self.statuses: Counter = Counter()
        self.by_endpoint: Counter = Counter()
        self.failures: list[str] = []
        self.fivexx: Counter = Counter()

    def value(self) -> str:
        return self.rng.choice(NASTY)

    def send(self, label: str, method: str, path: str, **kwargs) -> None:
        call = getattr(self.client, method.lower())
        response = call(path, **kwargs)
        self.sent += 1
        self.by_endpoint[label] += 1
        self.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.fivexx[label] += 1
            data = kwargs.get("data")
            shown = (
                {k: (v[:40] if isinstance(v, str) else v) for k, v in data.items()} if isinstance(data, dict) else None
            )
            self.failures.append(f"{response.status_code} {method} {path[:120]} {shown!r:.300}")
        # Xero's webhook answers carry no body by Xero's contract (Intent to Receive): status only.
        elif response.status_code >= 400 and not response.content.strip() and label != "xero webhook":
            self.failures.append(f"{response.status_code} without a message: {method} {path[:120]}")


@pytest.fixture
def world(db, sandbox, b24_app, acme_admin, settings):
    settings.XERO_WEBHOOK_KEY = WEBHOOK_KEY
    portal = portal_from_token_data(acme_admin)
    portal.application_token = "fuzz-application-token"
    portal.save()
    clerk = sandbox.bitrix24_user("Fuzz Clerk", admin=False, invoices="own")
    tokens = {}
    for name, user, admin in (("admin", acme_admin, True), ("clerk", clerk, False)):
        session = FrameSessionFactory(
            portal=portal, bitrix_user_id=int(user["id"]), is_admin=admin, access_token=user["access_token"]
        )
        tokens[name] = frame_token_issue(session=session)
    return portal, tokens


def _counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Portal, FrameSession, XeroConnection, XeroOAuthState, SyncJob, SyncLogEntry)
    }


APP_GETS = [
    ("/app/", ["x"]),
    ("/app/invoice/", ["invoice", "placement"]),
    ("/app/invoices/", ["from", "to", "size", "order", "page", "q", "kind", "failed"]),
    ("/app/invoices/{id}/", []),
    ("/app/invoices/{id}/preview/", []),
    ("/app/invoices/selected/", ["ids"]),
    ("/app/jobs/progress/", ["ids", "job"]),
    ("/app/log/", ["page", "kind", "failed", "q"]),
    ("/app/setup/", ["saved"]),
    ("/app/xero/accounts/suggest/", ["q", "limit"]),
    ("/app/import/", ["job", "kind"]),
    ("/app/import/progress/", ["job", "kind"]),
    ("/app/products/new/", ["x"]),
    ("/app/reconcile/", ["page", "q"]),
]
APP_POSTS = [
    ("/app/invoices/push/", ["ids", "all_filtered", "from", "to"]),
    ("/app/invoices/pull/", ["ids", "all_filtered", "from", "to"]),
    ("/app/invoices/{id}/accept/", ["x"]),
    ("/app/reconcile/run/", ["x"]),
    ("/app/log/retry/", ["entry", "ids", "job"]),
    ("/app/setup/", ["currency", "stage:NEW", "xero:PAID", "tax:0", "account", "x"]),
    ("/app/import/", ["kind", "currency"]),
    ("/app/products/new/", ["name", "price", "code", "account", "currency", "tax"]),
    ("/xero/disconnect/", ["x"]),
]


def _id(rng: random.Random) -> str:
    return rng.choice(["1", "0", "9" * 30, "9" * 5000, "18446744073709551616", "7"])


def test_a_corpus_of_malformed_requests_never_gets_a_5xx_and_stores_nothing(world, capsys):
    portal, tokens = world
    rng = random.Random(8)
    fuzz = Fuzzer(Client(raise_request_exception=False), rng)
    before = _counts()

    while fuzz.sent < TARGET_REQUESTS:
        # Bitrix24's event sender: real and forged names, a known member_id, nasty fields and keys.
        form = {"event": rng.choice(EVENT_NAMES), "auth[member_id]": portal.member_id}
        for field in rng.sample(EVENT_FIELDS, 3):
            form[field] = fuzz.value()
        if rng.random() < 0.3:
            form[rng.choice(WEIRD_KEYS)] = fuzz.value()
        fuzz.send("events", "POST", "/bitrix24/events/", data=form)

        # Installer and frame entries (app and placement).
        frame = {"member_id": rng.choice([portal.member_id, fuzz.value()]), "AUTH_ID": "x" * 32}
        for field in rng.sample(FRAME_FIELDS, 3):
            frame[field] = fuzz.value()
        if rng.random() < 0.2:
            frame[rng.choice(WEIRD_KEYS)] = "1"
        path = rng.choice(["/bitrix24/install/", "/bitrix24/app/", "/bitrix24/placement/"])
        query = rng.choice(["", f"?DOMAIN={fuzz.value()[:200]}", "?PROTOCOL=%00"])
        fuzz.send(path.strip("/").split("/")[-1], "POST", path + query, data=frame)

        # Xero's webhooks: bad signatures, and well-signed bodies that are not what Xero sends.
        body = rng.choice(
            [
                fuzz.value(),
                json.dumps({"events": fuzz.value()}),
                json.dumps({"events": [{"resourceId": fuzz.value(), "eventCategory": fuzz.value()}]}),
                json.dumps({"events": [{"tenantId": 5, "eventDateUtc": fuzz.value(), "resourceUrl": None}]}),
                _deep_object(3000),
            ]
        ).encode("utf-8", "replace")
        signature = xero_signature(WEBHOOK_KEY, body) if rng.random() < 0.7 else fuzz.value()[:100]
        fuzz.send(
            "xero webhook",
            "POST",
            "/xero/webhooks/",
            data=body,
            content_type="application/json",
            HTTP_X_XERO_SIGNATURE=signature,
        )

        # Xero's OAuth callback and the organisation choice.
        fuzz.send(
            "xero callback",
            "GET",
            "/xero/callback/",
            data={"code": fuzz.value()[:3000], "state": fuzz.value()[:3000], rng.choice(["error", "x"]): fuzz.value()},
        )
        fuzz.send("xero choose", "POST", "/xero/choose/", data={"state": fuzz.value(), "tenant_id": fuzz.value()})

        # Connect Xero with a broken sign-in (a signed-in admin's click legitimately stores a state).
        fuzz.send("/xero/connect/", "GET", "/xero/connect/", data={"ft": fuzz.value()[:500]})

        # Every app page and button, signed in (admin or clerk) or with a broken sign-in.
        who = rng.choice(["admin", "clerk", "broken"])
        ft = tokens.get(who) or fuzz.value()[:500]
        page, params = rng.choice(APP_GETS)
        query = {name: fuzz.value()[:6000] for name in params if rng.random() < 0.7}
        fuzz.send(page, "GET", page.format(id=_id(rng)), data=query, HTTP_X_FRAME_TOKEN=ft)
        page, params = rng.choice(APP_POSTS)
        if rng.random() < 0.5:
            data = {name: fuzz.value() for name in params}
            fuzz.send(page, "POST", page.format(id=_id(rng)), data=data, HTTP_X_FRAME_TOKEN=ft)
        else:
            raw = rng.choice(
                [
                    json.dumps({"ids": fuzz.value(), "from": 5, "to": []}),
                    json.dumps({"ids": [fuzz.value()], "all_filtered": "yes", "from": {"a": 1}}),
                    json.dumps([1, 2, 3]),
                    _deep_json(5000),
                    fuzz.value(),
                ]
            )
            fuzz.send(
                page, "POST", page.format(id=_id(rng)), data=raw, content_type="application/json", HTTP_X_FRAME_TOKEN=ft
            )

    fivexx = sum(n for status, n in fuzz.statuses.items() if status >= 500)
    with capsys.disabled():
        print(
            f"\nfuzz: {fuzz.sent} malformed requests across {len(fuzz.by_endpoint)} endpoints; "
            f"5xx: {fivexx}; statuses: {dict(sorted(fuzz.statuses.items()))}"
        )
    assert not fuzz.failures, f"{len(fuzz.failures)} bad answers ({dict(fuzz.fivexx)}), e.g.:\n" + "\n".join(
        fuzz.failures[:15]
    )
    assert _counts() == before


# --- the cases reproduced in the attack review, one by one ------------------------------------------


def test_nul_bytes_in_member_id_or_state_are_a_400(world):
    portal, _ = world
    client = Client(raise_request_exception=False)
    event = client.post("/bitrix24/events/", {"event": "ONAPPTEST", "auth[member_id]": f"{portal.member_id}\x00"})
    callback = client.get("/xero/callback/", {"code": "c", "state": "s\x00"})
    assert (event.status_code, callback.status_code) == (400, 400)
    assert "NUL" in event.json()["error"]


def test_a_superscript_job_number_and_a_5000_digit_id_are_a_400(world):
    _, tokens = world
    client = Client(raise_request_exception=False, HTTP_X_FRAME_TOKEN=tokens["admin"])
    assert client.get("/app/import/progress/", {"job": "²"}).status_code == 400
    assert client.get("/app/jobs/progress/", {"ids": "9" * 5000}).status_code == 400
    assert client.get(f"/app/invoices/{'9' * 5000}/").status_code in (400, 404)


def test_a_non_string_from_and_deeply_nested_bodies_are_a_400(world):
    _, tokens = world
    client = Client(raise_request_exception=False, HTTP_X_FRAME_TOKEN=tokens["admin"])
    for body in ({"from": 5, "ids": [1]}, {"from": {"a": 1}, "all_filtered": True}):
        response = client.post("/app/invoices/push/", json.dumps(body), content_type="application/json")
        assert 400 <= response.status_code < 500, response.content
    deep = client.post("/app/invoices/push/", _deep_json(5000), content_type="application/json")
    assert 400 <= deep.status_code < 500


def test_a_huge_auth_expires_is_capped_or_refused_never_a_500(world, acme_admin):
    portal, _ = world
    form = {
        "AUTH_ID": acme_admin["access_token"],
        "REFRESH_ID": acme_admin["refresh_token"],
        "AUTH_EXPIRES": "9" * 5000,
        "member_id": portal.member_id,
        "APPLICATION_TOKEN": portal.application_token,
        "PLACEMENT": "DEFAULT",
    }
    client = Client(raise_request_exception=False)
    refused = client.post("/bitrix24/app/", form)
    assert refused.status_code == 400 and b"AUTH_EXPIRES" in refused.content
    response = client.post("/bitrix24/app/", {**form, "AUTH_EXPIRES": "9" * 30})  # overflows a datetime
    assert response.status_code == 303
    session = FrameSession.objects.latest("pk")
    assert session.token_expires_at is not None
