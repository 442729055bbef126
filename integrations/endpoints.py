"""Base URLs of Xero and Bitrix24. With SANDBOX_URL set, every one of them points at the sandbox.

Read at call time (not import time) so that a test session can start the sandbox and then set
settings.SANDBOX_URL.
"""

from __future__ import annotations

from django.conf import settings


def _sandbox() -> str:
    return settings.SANDBOX_URL.rstrip("/")


def xero_authorize_url() -> str:
    return (
        f"{_sandbox()}/xero/identity/connect/authorize"
        if _sandbox()
        else "https://login.xero.com/identity/connect/authorize"
    )


def xero_token_url() -> str:
    return f"{_sandbox()}/xero/identity/connect/token" if _sandbox() else "https://identity.xero.com/connect/token"


def xero_revoke_url() -> str:
    return (
        f"{_sandbox()}/xero/identity/connect/revocation"
        if _sandbox()
        else "https://identity.xero.com/connect/revocation"
    )


def xero_identity_base() -> str:
    """Base for IdentityApi (/connections)."""
    return f"{_sandbox()}/xero" if _sandbox() else "https://api.xero.com"


def xero_accounting_base() -> str:
    return f"{_sandbox()}/xero/api.xro/2.0" if _sandbox() else "https://api.xero.com/api.xro/2.0"


def bitrix24_oauth_token_url() -> str:
    return f"{_sandbox()}/bitrix24/oauth/token/" if _sandbox() else "https://oauth.bitrix.info/oauth/token/"


def bitrix24_oauth_rest_base() -> str:
    """The OAuth server's REST (app.info about an installation)."""
    return f"{_sandbox()}/bitrix24/oauth/rest/" if _sandbox() else "https://oauth.bitrix.info/rest/"
