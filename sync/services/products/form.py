"""What the Add New Product form offers: catalog sections, Xero's revenue tax types, the connection."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from accounts.models import Portal, XeroConnection
from integrations.bitrix24.api import Bitrix24Api
from integrations.bitrix24.api.catalog import Section
from integrations.common.errors import ExternalAPIError
from sync.services.products.results import CRM_CATALOG_TYPE
from sync.services.xero_reference import XeroNotConnected, xero_tax_rates

logger = logging.getLogger(__name__)

# --- what the form offers ------------------------------------------------------------------------


@dataclass
class ProductFormOptions:
    catalog_iblock_id: int | None = None
    sections: list[tuple[str, str]] = field(default_factory=list)  # (id, label with nesting)
    currencies: list[tuple[str, str]] = field(default_factory=list)
    base_currency: str = ""
    tax_types: list[tuple[str, str]] = field(default_factory=list)
    bitrix24_error: str = ""
    xero_error: str = ""


def product_form_options(*, portal: Portal, client: Bitrix24Api) -> ProductFormOptions:
    """The choices of the Add New Product form: catalog sections and currencies as the user sees
    them in Bitrix24, and the revenue tax types of the Xero organisation."""
    options = ProductFormOptions()
    try:
        options.catalog_iblock_id = _catalog_iblock_id(client)
        if options.catalog_iblock_id is not None:
            options.sections = _section_choices(client, options.catalog_iblock_id)
        else:
            options.bitrix24_error = "This Bitrix24 portal has no product catalog."
        currencies = client.currencies_list()
        options.currencies = [(c.code, c.code) for c in currencies]
        options.base_currency = next((c.code for c in currencies if c.base), "")
    except ExternalAPIError as exc:
        options.bitrix24_error = exc.message
    try:
        options.tax_types = _revenue_tax_types(portal)
    except (ExternalAPIError, XeroNotConnected) as exc:
        options.xero_error = exc.message
    return options


def xero_connection_for(portal: Portal) -> XeroConnection | None:
    """The portal's Xero connection if it can be used now, else None (the page explains)."""
    connection = XeroConnection.objects.filter(portal=portal).first()
    return connection if connection is not None and connection.is_active else None


def _catalog_iblock_id(client: Bitrix24Api) -> int | None:
    # An SKU (offers) catalog points at its product iblock; products go into the product catalog.
    products = [c for c in client.catalogs_list() if not c.product_iblock_id]
    preferred = [c for c in products if c.iblock_type_id == CRM_CATALOG_TYPE] or products
    return preferred[0].products_iblock if preferred else None


def _section_choices(client: Bitrix24Api, iblock_id: int) -> list[tuple[str, str]]:
    children: dict[int | None, list[Section]] = {}
    for section in client.sections_list(iblock_id):
        children.setdefault(section.parent_id, []).append(section)
    out: list[tuple[str, str]] = []

    def walk(parent: int | None, depth: int) -> None:
        for section in children.get(parent, []):
            out.append((str(section.id), "\u2003" * depth + section.name))
            if depth < 10:
                walk(section.id, depth + 1)

    walk(None, 0)
    return out


def _revenue_tax_types(portal: Portal) -> list[tuple[str, str]]:
    """(TaxType, label) of the tax rates that may go on sales, from the cached reference data."""
    out = []
    for rate in xero_tax_rates(portal):
        if not rate.get("revenue") or not rate.get("tax_type"):
            continue
        value = rate.get("rate")
        label = f"{rate['name']} ({Decimal(str(value)).normalize():f}%)" if value is not None else rate["name"]
        out.append((rate["tax_type"], label or rate["tax_type"]))
    return out
