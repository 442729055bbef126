"""Pins the Celery settings that make delivery at-least-once (see connector/settings.py)."""

from django.conf import settings

from celery_app import app


def test_it_acks_late_and_requeues_on_worker_loss():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True


def test_it_reserves_one_task_at_a_time():
    assert app.conf.worker_prefetch_multiplier == 1


def test_it_speaks_json_only():
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"
    assert list(app.conf.accept_content) == ["json"]


def test_it_limits_task_time():
    assert app.conf.task_time_limit == settings.TASK_HARD_TIME_LIMIT_S
    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit


def test_visibility_timeout_is_well_above_the_longest_task_and_retry_delay():
    timeout = app.conf.broker_transport_options["visibility_timeout"]
    assert timeout >= 2 * (settings.TASK_HARD_TIME_LIMIT_S + settings.MAX_RETRY_DELAY_S)


def test_it_runs_on_redis_in_the_suite():
    assert app.conf.broker_url.startswith("redis://")


def test_a_real_worker_runs_a_task(celery_worker):
    import time
    import uuid

    from connector.coordination import redis_client
    from connector.tasks import ping_task

    token = uuid.uuid4().hex
    ping_task.delay(token)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and redis_client().get(f"ping:{token}") is None:
        time.sleep(0.1)
    assert redis_client().get(f"ping:{token}") == b"pong"
