"""The Celery application: `celery -A celery_app worker` / `celery -A celery_app beat`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")

app = Celery("connector")
# Every Celery setting lives in connector/settings.py under the CELERY_ prefix.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["connector", "accounts", "sync"])
