from django.contrib import admin
from django.urls import include, path

from connector import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", views.health, name="health"),
    path("ready/", views.ready, name="ready"),
    path("metrics", views.metrics_view, name="metrics"),
    path("", include("accounts.urls")),
    path("", include("sync.urls")),
    path("app/", include("sync.web.urls")),
]
