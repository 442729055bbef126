from celery import shared_task

from accounts.services.cleanup import expired_credentials_delete


@shared_task(name="accounts.tasks.expired_credentials_delete_task")
def expired_credentials_delete_task() -> dict:
    report = expired_credentials_delete()
    return {"frame_sessions": report.frame_sessions, "oauth_states": report.oauth_states}
