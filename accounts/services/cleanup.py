"""Forgetting what has expired: frame sign-ins past their maximum age and unused Xero OAuth states.

Both hold encrypted tokens (a user's Bitrix24 token; a Xero grant waiting for the organisation
choice), so keeping them after they can no longer be used is only risk.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from accounts.models import FrameSession, XeroOAuthState
from accounts.services.frame import FRAME_SESSION_MAX_AGE
from accounts.services.xero import XERO_STATE_MAX_AGE


@dataclass(frozen=True)
class CleanupReport:
    frame_sessions: int
    oauth_states: int


def expired_credentials_delete(*, now=None) -> CleanupReport:
    now = now or timezone.now()
    sessions, _ = FrameSession.objects.filter(created_at__lt=now - FRAME_SESSION_MAX_AGE).delete()
    states, _ = XeroOAuthState.objects.filter(created_at__lt=now - XERO_STATE_MAX_AGE).delete()
    return CleanupReport(frame_sessions=sessions, oauth_states=states)
