"""The Bitrix24 facade: named, typed methods over one portal's REST API, returning frozen
dataclasses. Outside integrations/bitrix24 nothing names a REST method, shapes its params or reads
its answer; the engine asks this package.

Two ways in, with the same call counts as the raw client:

- a named method runs one call: `api.statuses_list(entity_id)`, `api.user_admin()`, …;
- the same operations as commands (the area modules: app, statuses, catalog, directory, invoices,
  payments), composed into one `api.batch({...})` / `api.batch_all({...})` request where the
  engine batches, and read back typed with `outcome.get(command)`.

Areas: app.py (users, features, event/placement bindings, offline events), statuses.py
(pipelines, stages, old statuses), catalog.py (products, prices, VAT, currencies), directory.py
(companies, contacts, addresses), invoices.py (both kinds of invoice and product rows; old
invoices translated by old_invoices.py), payments.py (crm.item.payment.*).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from integrations.bitrix24.api import app, catalog, directory, invoices, payments, statuses
from integrations.bitrix24.api.base import BatchOutcome, Bitrix24ApiBase
from integrations.bitrix24.api.command import Command, ListCommand
from integrations.bitrix24.client import Bitrix24Client, Bitrix24Installation
from integrations.bitrix24.entity_types import SMART_INVOICE
from integrations.bitrix24.results import BATCH_LIMIT, PAGE_SIZE


class Bitrix24Api(Bitrix24ApiBase):
    """One portal's REST API (through a Bitrix24Client: background token or a user's)."""

    @classmethod
    def for_portal(
        cls, portal: Bitrix24Installation, *, user_token: str | None = None, interactive: bool = False
    ) -> Bitrix24Api:
        return cls(Bitrix24Client(portal, user_token=user_token, interactive=interactive))

    # --- app ---
    def user_current(self) -> app.User:
        return self.run(app.user_current())

    def user_admin(self) -> bool:
        return self.run(app.user_admin())

    def feature_enabled(self, code: str) -> bool:
        return self.run(app.feature_enabled(code))

    def events_list(self) -> list[app.EventBinding]:
        return self.run(app.events_list())

    def event_bind(self, event: str, handler: str) -> None:
        self.run(app.event_bind(event, handler))

    def event_bind_offline(self, event: str) -> None:
        self.run(app.event_bind_offline(event))

    def event_unbind(self, event: str, handler: str) -> None:
        self.run(app.event_unbind(event, handler))

    def event_unbind_offline(self, event: str) -> None:
        self.run(app.event_unbind_offline(event))

    def placements_list(self) -> list[app.PlacementBinding]:
        return self.run(app.placements_list())

    def placement_bind(self, code: str, handler: str, title: str) -> None:
        self.run(app.placement_bind(code, handler, title))

    def placement_unbind(self, code: str, handler: str) -> None:
        self.run(app.placement_unbind(code, handler))

    def offline_events_get(self, *, limit: int, process_id: str = "") -> app.OfflineBatch:
        return self.run(app.offline_events_get(limit=limit, process_id=process_id))

    def offline_events_clear(self, process_id: str, message_ids: Sequence[str]) -> None:
        self.run(app.offline_events_clear(process_id, message_ids))

    def offline_events_error(self, process_id: str, message_ids: Sequence[str]) -> None:
        self.run(app.offline_events_error(process_id, message_ids))

    # --- statuses ---
    def categories_list(self, entity_type: int) -> list[statuses.Category]:
        return self.run(statuses.categories_list(entity_type))

    def statuses_list(self, entity_id: str) -> list[statuses.Stage]:
        return self.run(statuses.statuses_list(entity_id))

    # --- catalog and currencies ---
    def catalogs_list(self) -> list[catalog.Catalog]:
        return self.run(catalog.catalogs_list())

    def price_types_base(self) -> list[catalog.PriceType]:
        return self.run(catalog.price_types_base())

    def sections_list(self, iblock_id: int) -> Iterator[catalog.Section]:
        return self.list_all(catalog.sections_list(iblock_id))

    def products_by_xml_id(self, iblock_id: int, xml_ids: Sequence[str]) -> Iterator[catalog.ProductRef]:
        return self.list_all(catalog.products_by_xml_id(iblock_id, xml_ids))

    def products_add(self, fields: Mapping[str, Any]) -> int:
        return self.run(catalog.product_add(fields))

    def product_delete(self, product_id: int) -> None:
        self.run(catalog.product_delete(product_id))

    def price_add(self, product_id: int, price_type: int, price: object, currency: str) -> None:
        self.run(catalog.price_add(product_id, price_type, price, currency))

    def vats_list(self) -> list[catalog.Vat]:
        return self.run(catalog.vats_list())

    def currencies_list(self) -> list[catalog.Currency]:
        return self.run(catalog.currencies_list())

    def currency_base(self) -> str:
        return self.run(catalog.currency_base())

    # --- companies and contacts ---
    def companies_by_title(self, title: str) -> list[int]:
        return self.run(directory.companies_by_title(title))

    def companies_add(self, fields: Mapping[str, Any], *, notify: bool = True) -> int:
        return self.run(directory.company_add(fields, notify=notify))

    def contacts_add(self, fields: Mapping[str, Any]) -> int:
        return self.run(directory.contact_add(fields))

    # --- invoices ---
    def items_add(self, fields: Mapping[str, Any], entity_type: int = SMART_INVOICE) -> int:
        return self.run(invoices.item_add(fields, entity_type))

    def productrows_set(self, owner_id: int, rows: Sequence[Mapping[str, Any]]) -> None:
        self.run(invoices.productrows_set(owner_id, rows))


__all__ = [
    "BATCH_LIMIT",
    "PAGE_SIZE",
    "BatchOutcome",
    "Bitrix24Api",
    "Command",
    "ListCommand",
    "app",
    "catalog",
    "directory",
    "invoices",
    "payments",
    "statuses",
]
