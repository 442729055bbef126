"""Container probes: `python -m connector.probe health|ready` exits 0 when the local web server
answers 200 on /health/ or /ready/, else 1 (the reason on stderr). No Django import: it is cheap.

The request carries the Host of PUBLIC_URL (production answers to that name only) and
X-Forwarded-Proto: https (as the TLS proxy would send), so neither host checks nor the HTTPS
redirect get in the way.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from urllib.parse import urlparse


def probe(what: str = "health", *, port: str | None = None, timeout: float = 5.0) -> tuple[bool, str]:
    port = port or os.environ.get("PORT", "8000")
    host = urlparse(os.environ.get("PUBLIC_URL", "")).netloc or f"127.0.0.1:{port}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/{what}/", headers={"Host": host, "X-Forwarded-Proto": "https"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - a fixed local URL
            return response.status == 200, f"{response.status}"
    except Exception as exc:  # an HTTPError (503 from /ready/) included
        return False, f"{type(exc).__name__}: {exc}"


def main(argv: list[str]) -> int:
    what = argv[1] if len(argv) > 1 else "health"
    if what not in ("health", "ready"):
        print("usage: python -m connector.probe [health|ready]", file=sys.stderr)
        return 2
    ok, detail = probe(what)
    if not ok:
        print(f"/{what}/: {detail}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
