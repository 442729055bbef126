from django.urls import path

from sync.views import xero_webhook

urlpatterns = [
    path("xero/webhooks/", xero_webhook.xero_webhook, name="xero_webhook"),
]
