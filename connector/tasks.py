from celery import shared_task

from connector.coordination import redis_client


@shared_task(name="connector.ping")
def ping_task(token: str) -> str:
    """Round trip through the broker: the worker leaves `ping:<token>` in Redis for a minute."""
    client = redis_client()
    if client is not None:
        client.set(f"ping:{token}", "pong", ex=60)
    return token
