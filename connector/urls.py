from django.contrib import admin
from django.urls import include, path

from connector import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", views.health, name="health"),
    path("", include("accounts.urls")),
    path("", include("sync.urls")),
    path("app/", include("sync.web.urls")),
]
