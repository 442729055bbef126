"""Routes of the in-Bitrix24 pages; each page module owns its own `urlpatterns`."""

from sync.web import imports, invoices, products, setup

app_name = "web"
urlpatterns = [*invoices.urlpatterns, *setup.urlpatterns, *imports.urlpatterns, *products.urlpatterns]
