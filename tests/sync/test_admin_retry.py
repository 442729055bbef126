"""An operator retries failed jobs from Django admin with the same service as the app's button."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from sync.models import SyncJob
from sync.models.choices import Trigger
from tests.factories import PortalFactory, SyncJobFactory


@pytest.fixture
def portal(db):
    return PortalFactory(domain="acme.bitrix24.com")


def test_the_admin_action_queues_failed_jobs_again_and_leaves_others(portal, client):
    failed = SyncJobFactory(
        portal=portal,
        kind=SyncJob.Kind.PUSH_INVOICE,
        target="31:7",
        trigger=Trigger.EVENT,
        status=SyncJob.Status.FAILED,
        attempts=8,
        last_error="Account must be valid.",
    )
    done = SyncJobFactory(
        portal=portal, kind=SyncJob.Kind.PUSH_INVOICE, target="31:8", trigger=Trigger.EVENT, status=SyncJob.Status.DONE
    )
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    response = client.post(
        reverse("admin:sync_syncjob_changelist"),
        {"action": "retry_failed_jobs", "_selected_action": [failed.pk, done.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 failed job(s) queued again" in response.content.decode()
    failed.refresh_from_db()
    done.refresh_from_db()
    assert (failed.status, failed.attempts, failed.priority) == (SyncJob.Status.PENDING, 0, SyncJob.Priority.USER)
    assert done.status == SyncJob.Status.DONE
