"""The app speaks the portal's language (LANG of Bitrix24's frame request) and shows times in the
portal's zone (learned from the offset Bitrix24 writes in its dates) — issue 12, points 6 and 7."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import pytest
import requests

from accounts.models import FrameSession
from tests.accounts import conftest as accounts_fixtures
from tests.factories import SyncLogEntryFactory

acme = accounts_fixtures.acme
app_url = accounts_fixtures.app_url

pytestmark = pytest.mark.django_db(transaction=True)


def open_in(sandbox, lang: str, user: int = 1) -> tuple[requests.Response, str, requests.Session]:
    """The frame request as Bitrix24 sends it, with LANG in the application URL's query."""
    frame = sandbox.bitrix24_frame(user)
    url = urlparse(frame["url"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    query["LANG"] = lang
    http = requests.Session()
    response = http.post(urlunparse(url._replace(query=urlencode(query))), data=frame["form"], timeout=30)
    token = parse_qs(urlparse(response.url).query).get("ft", [""])[0]
    return response, token, http


@pytest.mark.parametrize(
    ("lang", "html_lang", "words"),
    [
        # The last word comes from the JS messages' catalog (#app-i18n) the page carries for app.js.
        ("de", "de", ["Einrichtung", "Rechnungen", "Einstellungen speichern", "Steuersätze", '"Finished.": "Fertig."']),
        (
            "ru",
            "ru",
            ["Настройка", "Счета", "Сохранить настройки", '"Finished.": "\\u0413\\u043e\\u0442\\u043e\\u0432\\u043e."'],
        ),
        ("fr", "en", ["Setup", "Invoices", "Save settings", '"Finished.": "Finished."']),  # not translated: English
    ],
)
def test_pages_speak_the_language_bitrix24_sends(sandbox, acme, lang, html_lang, words):
    response, token, _ = open_in(sandbox, lang)
    assert response.status_code == 200 and token
    assert f'<html lang="{html_lang}">' in response.text
    for word in words:
        assert word in response.text, (lang, word)
    assert FrameSession.objects.get().lang == lang


def test_times_follow_the_portals_zone_and_amounts_the_language(sandbox, acme, app_url):
    rita = sandbox.bitrix24_user("Rita Sales", admin=False, invoices="all")
    item = sandbox.bitrix24_rest(
        "crm.item.add",
        {"entityTypeId": 31, "fields": {"title": "Zone check", "currencyId": "NZD", "opportunity": 1234.5}},
        auth=rita["access_token"],
    )["result"]["item"]
    _, token, http = open_in(sandbox, "de", user=rita["id"])
    http.get(f"{app_url}/app/invoices/", params={"ft": token}, timeout=30)  # learns the portal's zone
    page = http.get(f"{app_url}/app/invoices/", params={"ft": token}, timeout=30).text
    offset = item["updatedTime"][-6:]  # Bitrix24 writes the portal's offset, e.g. +03:00
    assert f"(UTC{offset})" in page
    assert "1.234,50\u00a0NZD" in page  # German grouping and decimal comma


def test_the_xero_window_keeps_its_opener_and_the_frame_can_poll_the_connection(sandbox, acme, app_url):
    """COOP: the app's pages allow popups to keep `window.opener`; the Xero window's own pages send
    unsafe-none (a cross-origin portal would otherwise lose the "connected" message). The fallback
    the frame polls says where the connection stands."""
    response, token, http = open_in(sandbox, "en")
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin-allow-popups"
    status = http.get(f"{app_url}/app/xero/status/", headers={"X-Frame-Token": token}, timeout=30)
    assert status.json()["connection"] == "none" and status.headers["Cache-Control"] == "no-store"
    callback = http.get(f"{app_url}/xero/callback/", params={"error": "access_denied"}, timeout=30)
    assert callback.headers["Cross-Origin-Opener-Policy"] == "unsafe-none"
    connect = http.get(f"{app_url}/xero/connect/", params={"ft": token}, allow_redirects=False, timeout=30)
    assert connect.headers["Cross-Origin-Opener-Policy"] == "unsafe-none"


@pytest.mark.parametrize(
    ("lang", "reconcile_words", "preview_words", "log_words"),
    [
        (
            "de",
            [
                "Abgleich",
                "Jetzt mit Xero abgleichen",
                "Noch nicht abgeglichen",
                '"Import Xero items": "Import von Xero-Artikeln"',
            ],
            ["Was Xero erhalten würde", "Summen", "Gesamt"],
            ["Zahlung erfasst", "Schaltfläche des Benutzers"],
        ),
        (
            "ru",
            ["Сверка", "Сравнить с Xero сейчас", "Сравнение ещё не выполнялось"],
            ["Что получит Xero", "Итоги", "Итого"],
            ["Оплата записана", "Кнопка пользователя"],
        ),
    ],
)
def test_reconciliation_and_preview_pages_speak_the_language(
    sandbox, acme, app_url, lang, reconcile_words, preview_words, log_words
):
    """Drift's pages (reconciliation, preview of what Xero would receive) follow LANG too, and so do the
    sync log's outcome and trigger labels (model choices, translated in the template)."""
    rita = sandbox.bitrix24_user("Rita Sales", admin=False, invoices="all")
    fields = {"title": "Language check", "currencyId": "NZD", "opportunity": 10}
    item = sandbox.bitrix24_rest("crm.item.add", {"entityTypeId": 31, "fields": fields}, auth=rita["access_token"])[
        "result"
    ]["item"]
    _, token, http = open_in(sandbox, lang)
    reconcile = http.get(f"{app_url}/app/reconcile/", params={"ft": token}, timeout=30)
    preview = http.get(f"{app_url}/app/invoices/{item['id']}/preview/", params={"ft": token}, timeout=30)
    assert reconcile.status_code == 200 and preview.status_code == 200, (reconcile.status_code, preview.status_code)
    for word in reconcile_words:
        assert word in reconcile.text, (lang, word)
    for word in preview_words:
        assert word in preview.text, (lang, word)
    assert "What Xero would receive" not in preview.text and "Compare with Xero now" not in reconcile.text
    SyncLogEntryFactory(
        portal=acme, direction="push", trigger="button", bitrix24_id=str(item["id"]), outcome="payment_recorded"
    )
    log = http.get(f"{app_url}/app/log/", params={"ft": token}, timeout=30)
    assert log.status_code == 200
    for word in log_words:
        assert word in log.text, (lang, word)
