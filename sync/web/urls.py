"""Routes of the in-Bitrix24 pages; each page module owns its own `urlpatterns`."""

from sync.web import buttons, connection, drift, imports, invoices, log, placements, products, setup

app_name = "web"
urlpatterns = [
    *invoices.urlpatterns,
    *buttons.urlpatterns,
    *drift.urlpatterns,
    *placements.urlpatterns,
    *log.urlpatterns,
    *setup.urlpatterns,
    *imports.urlpatterns,
    *products.urlpatterns,
    *connection.urlpatterns,
]
