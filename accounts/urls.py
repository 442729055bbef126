from django.urls import path

from accounts.views import bitrix24, xero

app_name = "accounts"

urlpatterns = [
    path("bitrix24/install/", bitrix24.install, name="install"),
    path("bitrix24/events/", bitrix24.events, name="events"),
    path("bitrix24/app/", bitrix24.frame_entry, name="app"),
    path("bitrix24/placement/", bitrix24.frame_entry, name="placement"),
    path("app/", bitrix24.home, name="home"),
    path("app/invoice/", bitrix24.placement_page, name="placement_page"),
    path("xero/connect/", xero.connect, name="xero_connect"),
    path("xero/callback/", xero.callback, name="xero_callback"),
    path("xero/choose/", xero.choose, name="xero_choose"),
    path("xero/disconnect/", xero.disconnect, name="xero_disconnect"),
]
