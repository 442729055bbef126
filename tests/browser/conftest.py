"""Browser tests: the app inside the sandbox's Bitrix24 portal page, driven by Playwright in Chromium.

- The browser is Debian's Chromium at /usr/bin/chromium (`make install` puts it there); Playwright's own
  browser download is never used. One browser for this package, a new context (fresh cookies and
  storage) per test.
- Our app is pytest-django's live_server; `settings.PUBLIC_URL = live_server.url`, and the sandbox portal
  installs the app against it over HTTP, exactly as in tests/accounts.
- `open_app(user, placement, options)` opens `GET /bitrix24/portal/?user=&placement=` of the sandbox: the
  portal page POSTs Bitrix24's frame form into its iframe, our frame entry signs the user in and
  redirects to the page. The returned `PortalApp` gives the page, the app's iframe (as a FrameLocator
  for locators that survive navigations, and as a Frame) and the HTTP status of the page in the frame.
- `shoot(app, label="")` saves the portal page with the app at 360x800, 768x800 and 1280x800 as
  tests/artifacts/screenshots/<test>[-<label>]-<width>.png and asserts that nothing in the app's frame
  overflows horizontally (document.documentElement.scrollWidth <= window.innerWidth).
- `low_contrast(app)` every visible text in the app's frame whose colour against its effective
  background is below WCAG AA (4.5:1; 3:1 for large text), computed in the page from the styles the
  browser applied (no axe-core download: a hand-written check over all visible text).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from playwright.sync_api import Browser, BrowserContext, Frame, FrameLocator, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

import celery_app  # noqa: F401 - binds shared tasks (the worker's ping) to the connector app in this process
from accounts.models import Portal
from sandbox.client import SandboxClient
from tests.conftest import ROOT, _free_port, _wait_http

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# What works on this closed network (see the machine notes): without the background-networking flags
# Chromium keeps trying Google's hosts and its connections are refused. Playwright adds --headless and
# --no-sandbox itself as well, and starts every browser with a new, empty temporary --user-data-dir
# (it refuses one passed in `args`).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
WIDTHS = (360, 768, 1280)
HEIGHT = 800
TIMEOUT_MS = 15_000

# Each element whose box sticks out past the frame's right edge (for the overflow assertion's message).
_CONTENT_HEIGHT_JS = """() => {
  const body = document.body, style = window.getComputedStyle(body);
  return Math.ceil(body.getBoundingClientRect().height + parseFloat(style.marginTop) + parseFloat(style.marginBottom));
}"""
_OVERFLOW_JS = """() => {
  const de = document.documentElement, w = window.innerWidth, out = [];
  for (const el of document.body ? document.body.querySelectorAll('*') : []) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > w + 0.5) {
      out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
               (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '') +
               ' right=' + Math.round(r.right));
    }
  }
  return {scrollWidth: de.scrollWidth, innerWidth: w, offenders: out.slice(0, 12)};
}"""


_REPAINTED_JS = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


@pytest.fixture(scope="package")
def browser() -> Browser:
    """One Chromium for all browser tests; Playwright runs for this package only.

    Playwright's sync API keeps an asyncio event loop running in this thread (in a greenlet of its
    own) for as long as it is started. Django then sees a "running event loop" in the test thread and
    refuses every ORM call (SynchronousOnlyOperation), although the test code is plain synchronous
    code and nothing else uses the connection concurrently. DJANGO_ALLOW_ASYNC_UNSAFE turns that check
    off, for exactly as long as Playwright runs (the fixture is package-scoped: it is set before the
    first browser test and restored after the last, so the rest of the suite keeps the check).
    """
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium. Run `make install` as root "
            "(it runs `apt-get install -y --no-install-recommends chromium`), or set CHROMIUM=<path>."
        )
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def context(browser: Browser) -> BrowserContext:
    ctx = browser.new_context(viewport={"width": 1280, "height": HEIGHT})
    ctx.set_default_timeout(TIMEOUT_MS)
    ctx.set_default_navigation_timeout(TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def app_url(live_server, settings, sandbox) -> str:
    """Our server's public URL, as the sandbox portal must reach it."""
    settings.PUBLIC_URL = live_server.url
    settings.SANDBOX_URL = sandbox.base_url
    settings.XERO_CLIENT_ID = "sandbox-client"
    settings.XERO_CLIENT_SECRET = "sandbox-secret"
    # Installs are verified against our Bitrix24 client id (app.info names it).
    settings.BITRIX24_CLIENT_ID = "local.browser-tests"
    settings.BITRIX24_CLIENT_SECRET = "browser-tests-secret"
    sandbox.bitrix24_settings(client_id="local.browser-tests", client_secret="browser-tests-secret")
    return live_server.url


def install(sandbox: SandboxClient, app_url: str) -> Portal:
    """Install the app into a sandbox portal as Bitrix24 does (installer POST + ONAPPINSTALL)."""
    installed = sandbox.bitrix24_install(
        app_url=f"{app_url}/bitrix24/app/",
        install_url=f"{app_url}/bitrix24/install/",
        event_url=f"{app_url}/bitrix24/events/",
    )
    assert installed["install_status"] == 200, installed
    return Portal.objects.get(member_id=installed["member_id"])


@pytest.fixture
def acme(sandbox, app_url) -> Portal:
    """The sandbox's portal with the app installed (no Xero connection yet)."""
    return install(sandbox, app_url)


@pytest.fixture
def acme_connected(acme) -> Portal:
    """`acme` with the sandbox's Xero organisation connected and the default stage map."""
    from accounts.services.sandbox import sandbox_connect_xero, sandbox_stage_map
    from tests.sync.conftest import setup_done

    sandbox_connect_xero(portal=acme)
    sandbox_stage_map(portal=acme)
    setup_done(acme)
    return acme


@pytest.fixture(scope="session")
def other_sandbox_url():
    """A second sandbox process: another Bitrix24 portal (its own member_id, users and invoices)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), "--quiet"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/_sandbox/state", proc=proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def other_sandbox(other_sandbox_url) -> SandboxClient:
    client = SandboxClient(other_sandbox_url)
    client.reset()
    return client


@pytest.fixture
def bravo(other_sandbox, acme, app_url, settings) -> Portal:
    """A second portal with the app installed, next to `acme`.

    Bitrix24 has one OAuth server for all portals; each sandbox process has its own and knows only
    its own portal. So the installer's `app.info` check is pointed at the second sandbox for the
    install only; afterwards everything of this portal goes to its stored client_endpoint.
    """
    previous = settings.SANDBOX_URL
    settings.SANDBOX_URL = other_sandbox.base_url
    other_sandbox.bitrix24_settings(
        client_id=settings.BITRIX24_CLIENT_ID, client_secret=settings.BITRIX24_CLIENT_SECRET
    )
    try:
        return install(other_sandbox, app_url)
    finally:
        settings.SANDBOX_URL = previous


@dataclass
class PortalApp:
    """The sandbox portal page in the browser with our app in its iframe (#b24-app)."""

    page: Page
    portal_url: str
    app_url: str
    statuses: list[int] = field(default_factory=list)  # HTTP status of each document loaded in the frame

    @property
    def ui(self) -> FrameLocator:
        """Locators inside the app's frame (they follow the frame across navigations)."""
        return self.page.frame_locator("#b24-app")

    @property
    def frame(self) -> Frame:
        frame = self.page.frame(name="b24-app")
        assert frame is not None, "the portal page has no app frame"
        return frame

    @property
    def status(self) -> int:
        return self.statuses[-1] if self.statuses else 0

    @property
    def token(self) -> str:
        """The frame sign-in token (?ft=) of the page now in the frame."""
        return parse_qs(urlparse(self.frame.url).query).get("ft", [""])[0]

    def goto(self, path: str, **params) -> int:
        """Navigate the frame to one of our pages, keeping the sign-in (as the app's own links do)."""
        query = urlencode({"ft": self.token, **params})
        response = self.frame.goto(f"{self.app_url}{path}?{query}", wait_until="load")
        return response.status if response is not None else 0

    def text(self) -> str:
        return self.ui.locator("body").inner_text()


@pytest.fixture
def open_app(page: Page, sandbox, app_url):
    """open_app(user=1, placement="DEFAULT", options=None, sandbox_url=None) -> PortalApp, loaded."""

    def _open(user=1, placement: str = "DEFAULT", options: dict | None = None, sandbox_url: str | None = None):
        import json

        base = sandbox_url or sandbox.base_url
        query = {"user": user, "placement": placement}
        if options:
            query["options"] = json.dumps(options)
        app = PortalApp(page=page, portal_url=f"{base}/bitrix24/portal/?{urlencode(query)}", app_url=app_url)

        def ours(response) -> bool:
            """A page of ours (not a redirect) loaded into the app's frame."""
            return (
                response.request.resource_type == "document"
                and response.frame.name == "b24-app"
                and response.url.startswith(app_url)
                and not 300 <= response.status < 400
            )

        page.on("response", lambda response: app.statuses.append(response.status) if ours(response) else None)
        # The portal page auto-submits Bitrix24's form into its (at first empty) iframe; our frame
        # entry answers 303 to the landing page.
        with page.expect_response(ours):
            response = page.goto(app.portal_url, wait_until="load")
        assert response is not None and response.status == 200, f"portal page: {response and response.status}"
        try:
            app.frame.wait_for_url(lambda url: url.startswith(app_url), wait_until="load")
        except PlaywrightError as exc:
            pytest.fail(f"the app's page did not load in the portal's frame (HTTP {app.statuses}): {exc.message}")
        return app

    return _open


def _slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_")


@pytest.fixture
def shoot(request):
    """shoot(app, label="") -> [paths]: screenshots at 360 and 1280 px, and no horizontal overflow."""

    def _shoot(app: PortalApp, label: str = "") -> list[Path]:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        stem = _slug(request.node.name) + (f"-{_slug(label)}" if label else "")
        paths, problems = [], []
        try:
            for width in WIDTHS:
                app.page.set_viewport_size({"width": width, "height": HEIGHT})
                box = app.page.evaluate(
                    "() => { const f = document.getElementById('b24-app'); f.style.height = '';"
                    " return [f.clientWidth, f.clientHeight]; }"
                )
                # Only the width is awaited: the app itself asks for its content's height
                # (BX24.fitWindow), so the frame's height may already be changing again.
                app.frame.wait_for_function("b => window.innerWidth === b[0]", arg=box)
                # Show the whole app: the iframe as tall as its content, measured as the app measures
                # it (sync/static/sync/frame.js: the body's own box). documentElement.scrollHeight is
                # never below the frame's current height, and the app's own resize (to its body height,
                # arriving at any moment after the width changed) would then undercut what we wait for.
                content_height = app.frame.evaluate(_CONTENT_HEIGHT_JS)
                app.page.evaluate(
                    "h => { document.getElementById('b24-app').style.height = h + 'px'; }", content_height
                )
                app.frame.wait_for_function("h => window.innerHeight >= h - 1", arg=content_height)
                metrics = app.frame.evaluate(_OVERFLOW_JS)
                path = SCREENSHOTS / f"{stem}-{width}.png"
                # The app's frame is another origin (its own renderer process): a full-page screenshot
                # paints it only where it was inside the viewport. So the viewport is made as tall
                # as the whole portal page for the shot, and the frame gets two frames to repaint.
                page_height = app.page.evaluate("document.documentElement.scrollHeight")
                app.page.set_viewport_size({"width": width, "height": max(HEIGHT, page_height)})
                app.frame.evaluate(_REPAINTED_JS)
                app.page.screenshot(path=str(path))
                paths.append(path)
                if metrics["scrollWidth"] > metrics["innerWidth"]:
                    problems.append(
                        f"{width}px: the app's page is {metrics['scrollWidth']}px wide in a "
                        f"{metrics['innerWidth']}px frame; sticking out: {metrics['offenders']} (see {path})"
                    )
        finally:
            app.page.set_viewport_size({"width": 1280, "height": HEIGHT})
        assert not problems, "horizontal overflow:\n" + "\n".join(problems)
        return paths

    return _shoot


# WCAG 2.x contrast of every visible text node's element against the first opaque background behind it
# (ancestors' background colours composited; opacity of ancestors applied). Disabled controls are exempt
# (WCAG 1.4.3). Returns [{text, fg, bg, ratio, need}] for the pairs below the threshold.
_CONTRAST_JS = """() => {
  const parse = c => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(x => parseFloat(x)); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const over = (top, under) => ({r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
                                  b: top.b * top.a + under.b * (1 - top.a), a: 1});
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
                     return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const background = el => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let bg = {r: 255, g: 255, b: 255, a: 1};
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  };
  const opacity = el => { let o = 1; for (let e = el; e; e = e.parentElement) o *= parseFloat(getComputedStyle(e).opacity); return o; };
  const out = [], seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.nodeValue.trim(), el = n.parentElement;
    if (!text || !el || seen.has(el)) continue;
    seen.add(el);
    if (['SCRIPT', 'STYLE', 'OPTION', 'OPTGROUP', 'NOSCRIPT', 'TITLE'].includes(el.tagName)) continue;
    if (el.closest('[disabled], [aria-disabled="true"], [hidden]')) continue;
    const style = getComputedStyle(el);
    if (style.visibility !== 'visible' || style.display === 'none' || !el.getClientRects().length) continue;
    const box = el.getBoundingClientRect();
    if (box.width < 1 || box.height < 1 || style.clip === 'rect(0px, 0px, 0px, 0px)') continue;
    const bg = background(el);
    let fg = parse(style.color); if (!fg) continue;
    fg = over({...fg, a: fg.a * opacity(el)}, bg);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const need = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    const r = ratio(fg, bg);
    if (r < need) out.push({text: text.slice(0, 60), fg: style.color, bg: `rgb(${Math.round(bg.r)}, ${Math.round(bg.g)}, ${Math.round(bg.b)})`,
                            ratio: Math.round(r * 100) / 100, need});
  }
  return out;
}"""


def low_contrast(app: PortalApp) -> list[dict]:
    """The text/background pairs in the app's frame below WCAG AA (empty when all pass)."""
    return app.frame.evaluate(_CONTRAST_JS)
