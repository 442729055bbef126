"""What a browser submits for a form left untouched, read from the page's HTML.

Used where a person's "accept this page as it is" must be reproduced over HTTP, through the real
page and its validation: the benches accept Setup that way (bench/_harness.py), and so does the
first-day test (tests/sync/test_first_day.py).
"""

from __future__ import annotations

from html.parser import HTMLParser


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
