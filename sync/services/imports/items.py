"""Xero items -> Bitrix24 products (found again by xmlId "xero:<ItemID>")."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from accounts.models import Portal
from integrations.bitrix24.api import Bitrix24Api, catalog
from integrations.bitrix24.api.command import Command
from integrations.common.errors import ExternalAPIError, PermanentError
from sync.mappers import MappingError
from sync.mappers.canonical import canonical_hash
from sync.mappers.contact import xero_item_to_product
from sync.models import ItemLink, SyncJob
from sync.services.imports.common import _chunks, _Hashes, _ran, _renew, _tick, _xero
from sync.services.imports.progress import (
    BATCH,
    FALLBACK_PRICE_TYPE,
    ImportRefused,
    ImportSummary,
    import_progress_write,
)

logger = logging.getLogger(__name__)
# --- items -> products ------------------------------------------------------------------------------


@dataclass
class _Item:
    xero_id: str
    code: str
    name: str
    product: dict
    price: dict | None
    account_code: str
    digest: str
    product_id: int | None = None


def items_import(*, portal: Portal, job: SyncJob, currency: str, bitrix24: Bitrix24Api | None = None) -> ImportSummary:
    """Every Xero item as a Bitrix24 catalog product with its sales price in `currency`, linked."""
    xero = _xero(portal)
    b24 = bitrix24 or Bitrix24Api.for_portal(portal, interactive=True)
    hashes = _Hashes(portal, "item")
    summary = ImportSummary(status=SyncJob.Status.RUNNING)
    import_progress_write(job.pk, summary)
    items = [dict(item.data) for item in xero.items_list()]  # Xero's JSON; not paged (xero-api.md §6.1)
    summary.total = len(items)
    import_progress_write(job.pk, summary)
    iblock_id = _catalog_iblock(b24)
    price_type = _base_price_type(b24)
    # Two commands per item (product, then its price) and a batch holds 50.
    for chunk in _chunks(items, BATCH // 2):
        _items_chunk(portal, b24, hashes, chunk, summary, currency=currency, iblock_id=iblock_id, price_type=price_type)
        _tick(job, summary, force=True)
        _renew(job)
    return summary


def _catalog_iblock(b24: Bitrix24Api) -> int:
    catalogs = b24.catalogs_list()
    if not catalogs:
        raise ImportRefused("Bitrix24 has no product catalog; open CRM > Products once to create it.")
    chosen = next((c for c in catalogs if c.iblock_type_id == "CRM_PRODUCT_CATALOG"), catalogs[0])
    return chosen.products_iblock


def _base_price_type(b24: Bitrix24Api) -> int:
    try:
        rows = b24.price_types_base()
    except ExternalAPIError as exc:
        if exc.retryable:
            raise
        return FALLBACK_PRICE_TYPE  # method not there (or not allowed): the stock base type
    return rows[0].id if rows else FALLBACK_PRICE_TYPE


def _items_chunk(
    portal: Portal,
    b24: Bitrix24Api,
    hashes: _Hashes,
    chunk: list[dict],
    summary: ImportSummary,
    *,
    currency: str,
    iblock_id: int,
    price_type: int,
) -> None:
    wanted: list[_Item] = []
    for item in chunk:
        summary.processed += 1
        xero_id = str(item.get("ItemID") or "")
        try:
            mapped = xero_item_to_product(item, currency)
        except MappingError as exc:
            summary.error(f"{item.get('Code') or xero_id}: {exc}")
            continue
        code = str(item.get("Code") or "")[:30]
        account = str((item.get("SalesDetails") or {}).get("AccountCode") or "")[:10]
        wanted.append(
            _Item(
                xero_id,
                code,
                mapped["product"]["name"],
                mapped["product"],
                mapped["price"],
                account,
                canonical_hash(mapped),
            )
        )
    if not wanted:
        return

    links_by_id = {
        str(link.xero_item_id): link
        for link in ItemLink.objects.filter(portal=portal, xero_item_id__in=[w.xero_id for w in wanted])
    }
    links_by_code = {
        link.xero_item_code: link
        for link in ItemLink.objects.filter(portal=portal, xero_item_code__in=[w.code for w in wanted])
    }
    seen = hashes.get_many(w.xero_id for w in wanted)
    to_update: list[_Item] = []
    to_create: list[_Item] = []
    for item in wanted:
        # By ItemID; else by Code (an item deleted and made again in Xero keeps its product).
        link = links_by_id.get(item.xero_id) or links_by_code.get(item.code)
        if link is not None and str(link.xero_item_id) == item.xero_id and seen.get(item.xero_id) == item.digest:
            summary.skipped += 1
            continue
        if link is not None:
            item.product_id = link.bitrix24_product_id
            to_update.append(item)
        else:
            to_create.append(item)

    if to_create:
        found = _products_by_xml_id(b24, iblock_id, [i.product["xmlId"] for i in to_create])
        for item in list(to_create):
            if item.product["xmlId"] in found:
                item.product_id = found[item.product["xmlId"]]
                to_create.remove(item)
                to_update.append(item)

    done: dict[str, str] = {}
    _products_update(portal, b24, to_update, summary, done, price_type=price_type)
    _products_add(portal, b24, to_create, summary, done, iblock_id=iblock_id, price_type=price_type)
    hashes.set_many(done)


def _products_by_xml_id(b24: Bitrix24Api, iblock_id: int, xml_ids: list[str]) -> dict[str, int]:
    return {p.xml_id: p.id for p in b24.products_by_xml_id(iblock_id, xml_ids) if p.xml_id}


def _link_item(portal: Portal, item: _Item) -> None:
    values = {
        "bitrix24_product_id": item.product_id,
        "xero_item_code": item.code,
        "xero_sales_account_code": item.account_code,
    }
    with transaction.atomic():
        link = (
            ItemLink.objects.select_for_update().filter(portal=portal, xero_item_id=uuid.UUID(item.xero_id)).first()
            or ItemLink.objects.select_for_update().filter(portal=portal, xero_item_code=item.code).first()
            or ItemLink.objects.select_for_update().filter(portal=portal, bitrix24_product_id=item.product_id).first()
        )
        if link is None:
            ItemLink.objects.create(portal=portal, xero_item_id=uuid.UUID(item.xero_id), **values)
        else:
            ItemLink.objects.filter(pk=link.pk).update(xero_item_id=uuid.UUID(item.xero_id), **values)


def _products_update(
    portal: Portal,
    b24: Bitrix24Api,
    items: list[_Item],
    summary: ImportSummary,
    done: dict[str, str],
    *,
    price_type: int,
) -> None:
    if not items:
        return
    commands: dict[str, Command[Any]] = {}
    for item in items:
        assert item.product_id is not None  # to_update items carry their product
        commands[f"u{item.xero_id}"] = catalog.product_update(item.product_id, item.product)
        commands[f"p{item.xero_id}"] = catalog.prices_of(item.product_id, price_type)
    first = b24.batch_all(commands)
    prices: dict[str, Command[Any]] = {}
    ok: list[_Item] = []
    for item in items:
        if not _ran(first, f"u{item.xero_id}", item.name, summary):
            continue
        if item.price is None:
            ok.append(item)
            continue
        existing = first.value(f"p{item.xero_id}") if first.ran(f"p{item.xero_id}") else []
        amount, currency = item.price["price"], item.price["currency"]
        if existing:
            prices[f"s{item.xero_id}"] = catalog.price_update(
                existing[0].id, item.product_id, price_type, amount, currency
            )
        else:
            prices[f"s{item.xero_id}"] = catalog.price_add(item.product_id, price_type, amount, currency)
        ok.append(item)
    second = b24.batch_all(prices)
    for item in ok:
        if item.price is not None and not _ran(second, f"s{item.xero_id}", item.name, summary):
            continue
        try:
            _link_item(portal, item)
        except IntegrityError as exc:
            summary.error(f"{item.name}: updated product {item.product_id} but could not link it ({exc})")
            continue
        summary.updated += 1
        done[item.xero_id] = item.digest


def _products_add(
    portal: Portal,
    b24: Bitrix24Api,
    items: list[_Item],
    summary: ImportSummary,
    done: dict[str, str],
    *,
    iblock_id: int,
    price_type: int,
) -> None:
    if not items:
        return
    commands: dict[str, Command[Any]] = {}
    for item in items:
        commands[f"a{item.xero_id}"] = catalog.product_add(item.product, iblock_id=iblock_id)
        if item.price is not None:
            # The price names the product made by the command before it, in the same batch.
            commands[f"s{item.xero_id}"] = catalog.price_add(
                catalog.product_id_ref(f"a{item.xero_id}"), price_type, item.price["price"], item.price["currency"]
            )
    result = b24.batch_all(commands)
    for item in items:
        key = f"a{item.xero_id}"
        if not _ran(result, key, item.name, summary):
            continue
        try:
            item.product_id = result.value(key)  # the id, or PermanentError for an answer without one
        except PermanentError as exc:
            summary.error(f"{item.name}: {exc.message}")
            continue
        price_failed = item.price is not None and not _ran(result, f"s{item.xero_id}", item.name, summary)
        try:
            _link_item(portal, item)
        except IntegrityError as exc:
            summary.error(f"{item.name}: created product {item.product_id} but could not link it ({exc})")
            continue
        if price_failed:
            continue  # linked, so the next import adds the price instead of a second product
        summary.created += 1
        done[item.xero_id] = item.digest
