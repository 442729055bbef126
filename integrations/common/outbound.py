"""Which hosts the service may send a request to: the one check before every Bitrix24 REST call.

A portal's REST address comes from Bitrix24's OAuth server (app.info), but a bug or a compromised
answer must still not turn the service into a proxy into its own network (SSRF): cloud metadata at
169.254.169.254, the database, Redis, an admin port on localhost. So:
- only https, and only hosts whose every address is public (no loopback, private, link-local,
  reserved or multicast address, whether written as an IP or resolved from a name);
- with SANDBOX_URL set (development, tests, benches), also the sandbox's origin and other fakes on
  this machine (loopback: a second sandbox plays a second portal), never a private network or
  cloud-metadata address.
Xero's and the OAuth servers' URLs are constants of integrations/endpoints.py, not input.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class OutboundRefused(ValueError):
    """The URL points at a host the service must not call."""


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


def outbound_check(url: str) -> None:
    """Raise OutboundRefused unless `url` may be called (see the module docstring)."""
    scheme, host, port = _origin(url)
    sandbox = settings.SANDBOX_URL
    if sandbox and scheme in ("http", "https") and ((scheme, host, port) == _origin(sandbox) or _loopback(host)):
        return
    if scheme != "https" or not host:
        raise OutboundRefused("only https URLs may be called")
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)}
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundRefused(f"{host} does not resolve") from exc
    if not addresses or not all(_public(a) for a in addresses):
        raise OutboundRefused(f"{host} is a private, loopback or reserved address")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
