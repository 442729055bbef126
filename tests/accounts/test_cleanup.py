"""Expired frame sign-ins and OAuth states are deleted; live ones stay."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import FrameSession, XeroOAuthState
from accounts.services.cleanup import expired_credentials_delete
from tests.factories import FrameSessionFactory, PortalFactory, XeroOAuthStateFactory


@pytest.fixture
def portal(db):
    return PortalFactory(domain="acme.bitrix24.com")


def _age(model, row, hours: float) -> None:
    model.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(hours=hours))


def test_it_deletes_sign_ins_past_their_maximum_age_and_keeps_live_ones(portal):
    old = FrameSessionFactory(portal=portal, bitrix_user_id=1, access_token="secret-old")
    live = FrameSessionFactory(portal=portal, bitrix_user_id=2, access_token="secret-live")
    _age(FrameSession, old, 13)
    _age(FrameSession, live, 1)
    report = expired_credentials_delete()
    assert report.frame_sessions == 1
    assert list(FrameSession.objects.values_list("pk", flat=True)) == [live.pk]


def test_it_deletes_unused_oauth_states_after_ten_minutes(portal):
    stale = XeroOAuthStateFactory(portal=portal, nonce="a" * 32, pending_access_token="grant")
    fresh = XeroOAuthStateFactory(portal=portal, nonce="b" * 32)
    _age(XeroOAuthState, stale, 1)
    assert expired_credentials_delete().oauth_states == 1
    assert list(XeroOAuthState.objects.values_list("pk", flat=True)) == [fresh.pk]
