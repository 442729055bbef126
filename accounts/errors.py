"""Why a request to the accounts flows was refused, and with which HTTP status.

Services raise these; views render them as a clear page (or JSON for Bitrix24's event sender).
"""

from __future__ import annotations


class Refused(Exception):
    """The caller is not who it claims to be, or may not do this. Nothing was stored."""

    status = 403

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class Unverified(Refused):
    """A token or application_token could not be verified with Bitrix24 / did not match."""

    status = 401


class UpstreamFailed(Refused):
    """Bitrix24 or Xero failed while we were setting up; try again."""

    status = 502
