"""What a browser submits for a form left untouched, read from the page's HTML.

Used where a person's "accept this page as it is" must be reproduced over HTTP, through the real
page and its validation: the benches and the embedded-demo test accept Setup that way, and the
first-day test reads the form as shown (tests/sync/test_first_day.py).
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urlparse

import requests


class _FormAsShown(HTMLParser):
    """Each select's selected option (or its first), checked checkboxes, hidden and text inputs."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.data: dict[str, str] = {}
        self.inside = False
        self.select: str | None = None
        self.first: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        if tag == "input" and a.get("type") == "hidden":
            self.data[a["name"]] = a.get("value") or ""
        elif tag == "input" and a.get("type") == "checkbox" and "checked" in a:
            self.data[a["name"]] = a.get("value") or "on"
        elif tag == "select":
            self.select, self.first = a["name"], None
        elif tag == "option" and self.select:
            value = a.get("value") or ""
            if self.first is None:
                self.first = value
            if "selected" in a:
                self.data[self.select] = value

    def handle_endtag(self, tag):
        if tag == "select" and self.select:
            self.data.setdefault(self.select, self.first or "")
            self.select = None
        elif tag == "form":
            self.inside = False


def form_as_shown(html: str, form_id: str = "setup-form") -> dict[str, str]:
    parser = _FormAsShown(form_id)
    parser.feed(html)
    return parser.data


def setup_accept_as_proposed(sandbox_url: str, app_url: str, *, timeout: float = 60) -> None:
    """What the portal's admin does on the first day: open the app (the frame POST Bitrix24 sends
    for user 1), go to Setup and save it as proposed. Nothing syncs automatically before that
    (sync.services.gate), so anything that measures or shows automatic sync starts from here."""
    frame = requests.post(
        f"{sandbox_url}/_sandbox/bitrix24/frame", json={"user": 1, "placement": "DEFAULT"}, timeout=timeout
    ).json()
    http = requests.Session()
    landed = http.post(frame["url"], data=frame["form"], timeout=timeout)
    token = parse_qs(urlparse(landed.url).query).get("ft", [""])[0]
    page = http.get(f"{app_url}/app/setup/", params={"ft": token}, timeout=timeout)
    saved = http.post(f"{app_url}/app/setup/", params={"ft": token}, data=form_as_shown(page.text), timeout=timeout)
    if saved.status_code != 200 or "Settings saved" not in saved.text:
        raise RuntimeError(f"Setup was not saved ({saved.status_code})")
