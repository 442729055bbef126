import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")
application = get_wsgi_application()


def _views_imported() -> None:
    """The URLconfs and every view they name, and the Celery app the first dispatch sends with,
    imported now rather than by the first request a worker answers. Under gunicorn (gunicorn.conf.py
    preloads the app) that happens once in the master, so every worker, a recycled one too, starts
    with them: ~0.1 s of CPU each (measured on the 2-core bench machine) that the first deliveries
    of a cold worker would queue behind."""
    from django.urls import get_resolver

    import celery_app  # noqa: F401 - imported for its side effect: Celery loaded

    resolver = get_resolver()
    for path in ("/bitrix24/events/", "/xero/webhooks/", "/health/"):
        resolver.resolve(path)


_views_imported()
