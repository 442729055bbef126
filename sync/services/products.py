"""Add New Product: one form creates the Bitrix24 catalog product and the Xero item together.

Order (so Xero refusing leaves nothing half-made in Bitrix24):

0. Rights first, before any write: Bitrix24 lets only administrators call catalog.product.add
   (catalog/product/catalog-product-add.md, "Who can execute the method: administrator"), so
   user.admin with the USER's token decides. A user who may not create the product must not get a
   Xero item either (not created and deleted again: never created).
1. Xero item first (PUT /Items, summarizeErrors=false). Xero is the side that refuses for data
   reasons (duplicate code, unknown account, tax type), and its refusal costs nothing to undo.
2. Bitrix24 product (catalog.product.add in the catalog iblock + section, then catalog.price.add for
   the base price type) with the USER's token, so Bitrix24's rights decide. If Bitrix24 fails, the
   Xero item is deleted again (and a product made before a failed price too); if that compensation
   fails, the user is told and the log keeps both ids for an admin.
3. ItemLink, then a SyncLogEntry.

A double submit of one form (same nonce) is serialised by a lock and answered from the first run;
the Idempotency-Key (portal + code + nonce + payload hash) covers a retry after an ambiguous Xero
failure (timeout/5xx), where Xero may have created the item without us seeing the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from accounts.models import Portal, XeroConnection
from connector.coordination import redis_client
from integrations.bitrix24.client import Bitrix24Client
from integrations.common.errors import ExternalAPIError, PermanentError
from integrations.common.locks import LockTimeout, redis_lock
from integrations.xero.client import XeroClient, element_errors
from sync.mappers.canonical import canonical_hash, idempotency_key
from sync.mappers.contact import product_to_xero_item
from sync.models import Direction, ItemLink, SyncLogEntry, Trigger
from sync.services.xero_reference import XeroNotConnected, xero_tax_rates

logger = logging.getLogger(__name__)

CRM_CATALOG_TYPE = "CRM_PRODUCT_CATALOG"
# Bitrix24 creates the base price type with id 1 when the catalog module is installed; used when the
# user may not list price types (or the portal does not answer catalog.priceType.list).
DEFAULT_BASE_PRICE_TYPE = 1
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
# A submission holds its form's lock for the two API round trips at most; a double click waits.
FORM_LOCK_TTL_S = 120
FORM_LOCK_WAIT_S = 60
FORM_USED_TTL_S = 24 * 3600


# --- results and refusals ------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductCreated:
    bitrix24_product_id: int
    xero_item_id: str
    xero_item_code: str
    name: str
    bitrix24_url: str
    xero_url: str
    already: bool = False  # a repeated submit of a form that had already created both


class ProductNotCreated(Exception):
    """Why the product was not created, in the words of the system that refused.

    `system` says who refused ("xero", "bitrix24", "connector"); `details` are the API's own
    messages; `compensation_failed` means a half was left behind and an admin must clean up;
    `retry_same_form` means the outcome is unknown (Xero did not answer): send the same form again,
    and the Idempotency-Key makes sure Xero does not create the item twice.
    """

    def __init__(
        self,
        message: str,
        *,
        system: str,
        details: list[str] | None = None,
        compensation_failed: bool = False,
        retry_same_form: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.details = details or []
        self.compensation_failed = compensation_failed
        self.retry_same_form = retry_same_form


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


def product_form_options(*, portal: Portal, client: Bitrix24Client) -> ProductFormOptions:
    """The choices of the Add New Product form: catalog sections and currencies as the user sees
    them in Bitrix24, and the revenue tax types of the Xero organisation."""
    options = ProductFormOptions()
    try:
        options.catalog_iblock_id = _catalog_iblock_id(client)
        if options.catalog_iblock_id is not None:
            options.sections = _section_choices(client, options.catalog_iblock_id)
        else:
            options.bitrix24_error = "This Bitrix24 portal has no product catalog."
        rows = client.result("crm.currency.list", {"order": {"SORT": "ASC"}}) or []
        options.currencies = [(r["CURRENCY"], r["CURRENCY"]) for r in rows]
        options.base_currency = next((r["CURRENCY"] for r in rows if r.get("BASE") == "Y"), "")
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


def _catalog_iblock_id(client: Bitrix24Client) -> int | None:
    result = client.result("catalog.catalog.list", {"select": ["id", "iblockId", "iblockTypeId", "productIblockId"]})
    catalogs = result.get("catalogs", []) if isinstance(result, dict) else result or []
    # An SKU (offers) catalog points at its product iblock; products go into the product catalog.
    products = [c for c in catalogs if not c.get("productIblockId")]
    preferred = [c for c in products if c.get("iblockTypeId") == CRM_CATALOG_TYPE] or products
    return int(preferred[0]["iblockId"] or preferred[0]["id"]) if preferred else None


def _section_choices(client: Bitrix24Client, iblock_id: int) -> list[tuple[str, str]]:
    rows = list(
        client.list_all(
            "catalog.section.list",
            {"select": ["id", "name", "iblockSectionId"], "filter": {"iblockId": iblock_id}, "order": {"name": "ASC"}},
            key="sections",
        )
    )
    children: dict[Any, list[dict]] = {}
    for row in rows:
        children.setdefault(row.get("iblockSectionId") or None, []).append(row)
    out: list[tuple[str, str]] = []

    def walk(parent: Any, depth: int) -> None:
        for row in children.get(parent, []):
            out.append((str(row["id"]), "\u2003" * depth + str(row["name"])))
            if depth < 10:
                walk(row["id"], depth + 1)

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


# --- create both ---------------------------------------------------------------------------------


def product_create_in_both(*, portal: Portal, client: Bitrix24Client, form_data: Mapping[str, Any]) -> ProductCreated:
    """Create the Xero item, then the Bitrix24 product as the user, then link them.

    form_data: name, price (Decimal), currency, section_id (str, "" for the root), code,
    description, account_code, tax_type, nonce (one per rendered form). Raises ProductNotCreated.
    """
    connection = xero_connection_for(portal)
    if connection is None:
        raise ProductNotCreated("Xero is not connected. An administrator must connect Xero first.", system="connector")
    code = str(form_data["code"]).strip()
    nonce = str(form_data["nonce"])
    form_key = f"product-new:{portal.pk}:{nonce}"
    try:
        with redis_lock(f"lock:{form_key}", ttl_s=FORM_LOCK_TTL_S, wait_s=FORM_LOCK_WAIT_S):
            if _form_used(form_key):
                return _earlier_outcome(portal, client, code)
            try:
                created = _create(portal=portal, client=client, connection=connection, form_data=form_data)
            except ProductNotCreated as refused:
                if not refused.retry_same_form:
                    _mark_form_used(form_key)
                raise
            _mark_form_used(form_key)
            return created
    except LockTimeout:
        raise ProductNotCreated(
            "This form is still being sent. Wait a moment and reload the page.", system="connector"
        ) from None


def _create(
    *, portal: Portal, client: Bitrix24Client, connection: XeroConnection, form_data: Mapping[str, Any]
) -> ProductCreated:
    name = str(form_data["name"]).strip()
    price = Decimal(form_data["price"])
    currency = str(form_data["currency"])
    section_id = str(form_data.get("section_id") or "")
    description = str(form_data.get("description") or "").strip()
    code = str(form_data["code"]).strip()

    _require_catalog_rights(client)
    xero = XeroClient(connection, interactive=True)
    item = product_to_xero_item(
        {"name": name, "detailText": description},
        price,
        code=code,
        account_code=str(form_data["account_code"]).strip(),
        tax_type=str(form_data["tax_type"]),
    )
    xero_item = _xero_item_create(
        portal=portal, xero=xero, item=item, nonce=str(form_data["nonce"]), code=code, name=name
    )
    item_id = str(xero_item.item_id)

    try:
        # The form showed this catalog's sections, but a POST must not choose the iblock.
        iblock_id = _catalog_iblock_id(client)
        if iblock_id is None:
            raise PermanentError("This Bitrix24 portal has no product catalog.", system="bitrix24")
        product_id = _bitrix24_product_create(
            client,
            iblock_id=iblock_id,
            section_id=section_id,
            name=name,
            description=description,
            item_id=item_id,
            price=price,
            currency=currency,
        )
    except ExternalAPIError as exc:
        raise _compensate(portal=portal, xero=xero, item_id=item_id, code=code, name=name, cause=exc) from exc

    # Xero has just accepted this code as new, so a link we still keep under it is stale (its item
    # was deleted in Xero): the new pair replaces it rather than failing on the unique code.
    link, _ = ItemLink.objects.update_or_create(
        portal=portal,
        xero_item_code=code,
        defaults={
            "bitrix24_product_id": product_id,
            "xero_item_id": item_id,
            "xero_sales_account_code": str(form_data["account_code"]).strip()[:10],
        },
    )
    _log(
        portal,
        outcome=SyncLogEntry.Outcome.CREATED,
        bitrix24_id=product_id,
        xero_id=item_id,
        message=f"Product “{name}” created in Bitrix24 and as item {code} in Xero.",
        details={"code": code, "price": str(price), "currency": currency, "section_id": section_id},
    )
    return _created(portal, link, name, iblock_id=iblock_id)


def _require_catalog_rights(client: Bitrix24Client) -> None:
    """ProductNotCreated unless Bitrix24 says this user may create catalog products."""
    try:
        allowed = client.result("user.admin", {}) in (True, "Y", "y", 1, "1", "true")
    except ExternalAPIError as exc:
        raise ProductNotCreated(
            f"Bitrix24 did not say whether you may create products ({exc.message}). Nothing was created.",
            system="bitrix24",
            retry_same_form=exc.retryable,
        ) from exc
    if not allowed:
        raise ProductNotCreated(
            "Bitrix24 lets only administrators create catalog products, so nothing was created in Bitrix24 "
            "or Xero. Ask a Bitrix24 administrator to add it.",
            system="bitrix24",
            retry_same_form=True,
        )


def _xero_item_create(*, portal: Portal, xero: XeroClient, item: dict, nonce: str, code: str, name: str):
    """PUT /Items with one element; the created item model, or ProductNotCreated with Xero's words."""
    from xero_python.api_client.deserializer import deserialize

    items = deserialize("Items", {"Items": [item]}, xero.accounting.get_model_finder())
    # The payload hash is part of the key: a corrected form is a different request, and Xero
    # refuses a key reused for a different body.
    key = idempotency_key(portal.member_id, f"{code}:{nonce}", canonical_hash(item)[:16], operation="item")
    try:
        answer = xero.call("create_items", items=items, summarize_errors=False, idempotency_key=key)
    except ExternalAPIError as exc:
        if exc.retryable:
            raise ProductNotCreated(
                f"Xero did not answer ({exc.message}). Nothing was created in Bitrix24. Send the form "
                "again: Xero will not create the item twice.",
                system="xero",
                retry_same_form=True,
            ) from exc
        _log(portal, outcome=SyncLogEntry.Outcome.FAILED, message=exc.message, details={"code": code, "name": name})
        raise ProductNotCreated(
            "Xero refused the item; nothing was created in Bitrix24.",
            system="xero",
            details=exc.details or [exc.message],
        ) from exc
    created = (answer.items or [None])[0]
    problems = element_errors(created) if created is not None else ["Xero answered without the item."]
    if problems or created is None or str(created.item_id or ZERO_GUID) == ZERO_GUID:
        problems = problems or ["Xero did not create the item."]
        _log(
            portal,
            outcome=SyncLogEntry.Outcome.FAILED,
            message="; ".join(problems),
            details={"code": code, "name": name, "xero_errors": problems},
        )
        raise ProductNotCreated(
            "Xero refused the item; nothing was created in Bitrix24.", system="xero", details=problems
        )
    return created


def _bitrix24_product_create(
    client: Bitrix24Client,
    *,
    iblock_id: int,
    section_id: str,
    name: str,
    description: str,
    item_id: str,
    price: Decimal,
    currency: str,
) -> int:
    fields: dict[str, Any] = {"iblockId": iblock_id, "name": name, "active": "Y", "xmlId": f"xero:{item_id}"}
    if section_id:
        fields["iblockSectionId"] = int(section_id)
    if description:
        fields["detailText"] = description
    try:
        result = client.result("catalog.product.add", {"fields": fields})
    except ExternalAPIError as exc:
        if exc.retryable:
            # A timeout or 5xx may still have created it: find it by our xmlId and take it back.
            _bitrix24_orphan_delete(client, iblock_id=iblock_id, xml_id=fields["xmlId"])
        raise
    product_id = created_product_id(result)
    try:
        client.result(
            "catalog.price.add",
            {
                "fields": {
                    "productId": product_id,
                    "catalogGroupId": _base_price_type(client),
                    "price": str(price),
                    "currency": currency,
                }
            },
        )
    except ExternalAPIError as exc:
        # The product without its price is a half: delete it before the Xero item goes too.
        try:
            client.result("catalog.product.delete", {"id": product_id})
        except ExternalAPIError as cleanup:
            exc.details = [*exc.details, f"Bitrix24 product {product_id} could not be deleted: {cleanup.message}"]
            exc.payload = {"orphan_bitrix24_product_id": product_id}
        raise
    return product_id


def created_product_id(result: Any) -> int:
    """The id in catalog.product.add's (or .update's) result: `{"element": {"id": …}}` on a real
    portal (catalog/product/catalog-product-add.md; only catalog.product.get says "product").
    Raises PermanentError for an answer without one instead of a TypeError."""
    element = result.get("element") if isinstance(result, dict) else None
    if not isinstance(element, dict):
        element = result.get("product") if isinstance(result, dict) else None  # older catalog modules
    try:
        return int(element["id"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        raise PermanentError(
            f"Bitrix24 answered catalog.product.add without a product id: {str(result)[:200]}", system="bitrix24"
        ) from None


def _bitrix24_orphan_delete(client: Bitrix24Client, *, iblock_id: int, xml_id: str) -> None:
    try:
        rows = client.result(
            "catalog.product.list",
            {"select": ["id", "iblockId"], "filter": {"iblockId": iblock_id, "xmlId": xml_id}},
        )
        for row in (rows or {}).get("products", []):
            client.result("catalog.product.delete", {"id": row["id"]})
    except ExternalAPIError:
        logger.warning("could not check for a half-made Bitrix24 product %s", xml_id, exc_info=True)


def _base_price_type(client: Bitrix24Client) -> int:
    try:
        result = client.result("catalog.priceType.list", {"select": ["id", "base"], "filter": {"base": "Y"}})
    except ExternalAPIError:
        return DEFAULT_BASE_PRICE_TYPE
    rows = result.get("priceTypes", []) if isinstance(result, dict) else result or []
    return int(rows[0]["id"]) if rows else DEFAULT_BASE_PRICE_TYPE


def _compensate(
    *, portal: Portal, xero: XeroClient, item_id: str, code: str, name: str, cause: ExternalAPIError
) -> ProductNotCreated:
    """Bitrix24 failed after the Xero item was made: delete the item; the refusal to raise, with
    Bitrix24's reason (and, if the cleanup failed, what was left behind)."""
    reasons = [cause.message, *cause.details]
    orphan_product = (
        (cause.payload or {}).get("orphan_bitrix24_product_id") if isinstance(cause.payload, dict) else None
    )
    try:
        xero.call("delete_item", item_id=item_id)
        undo_error = ""
    except ExternalAPIError as exc:
        undo_error = "" if exc.status == 404 else exc.message  # already gone is what we wanted
    details = {"code": code, "name": name, "bitrix24_error": cause.message, "bitrix24_code": cause.code or ""}
    if undo_error or orphan_product:
        details |= {"xero_delete_error": undo_error, "orphan_xero_item_id": item_id if undo_error else ""}
        if orphan_product:
            details["orphan_bitrix24_product_id"] = orphan_product
        logger.error(
            "Add New Product left a half behind: portal=%s xero_item=%s (%s) bitrix24_product=%s; %s",
            portal.member_id,
            item_id if undo_error else "-",
            code,
            orphan_product or "-",
            undo_error or "Bitrix24 product not deleted",
        )
        _log(
            portal,
            outcome=SyncLogEntry.Outcome.FAILED,
            bitrix24_id=orphan_product or "",
            xero_id=item_id,
            message=f"Bitrix24 refused the product ({cause.message}); cleanup failed: {undo_error or 'see details'}",
            details=details,
        )
        leftovers = []
        if undo_error:
            leftovers.append(f"the Xero item {code} (ItemID {item_id}) could not be deleted: {undo_error}")
        if orphan_product:
            leftovers.append(f"the Bitrix24 product {orphan_product} could not be deleted")
        return ProductNotCreated(
            "Bitrix24 refused the product, and cleaning up failed: "
            + "; ".join(leftovers)
            + ". Delete it by hand or ask an administrator (it is in the sync log).",
            system="bitrix24",
            details=reasons,
            compensation_failed=True,
        )
    _log(
        portal,
        outcome=SyncLogEntry.Outcome.FAILED,
        xero_id=item_id,
        message=f"Bitrix24 refused the product: {cause.message}. The Xero item {code} was deleted again.",
        details=details | {"xero_item_deleted": True},
    )
    return ProductNotCreated(
        "Bitrix24 refused the product. The Xero item was deleted again, so neither side has it.",
        system="bitrix24",
        details=reasons,
    )


# --- helpers -------------------------------------------------------------------------------------


def _created(
    portal: Portal, link: ItemLink, name: str, *, iblock_id: int | None, already: bool = False
) -> ProductCreated:
    return ProductCreated(
        bitrix24_product_id=link.bitrix24_product_id,
        xero_item_id=str(link.xero_item_id),
        xero_item_code=link.xero_item_code,
        name=name,
        bitrix24_url=(
            f"https://{portal.domain}/crm/catalog/{iblock_id}/product/{link.bitrix24_product_id}/"
            if iblock_id
            else f"https://{portal.domain}/crm/catalog/"
        ),
        xero_url=f"https://go.xero.com/Accounts/Inventory/{link.xero_item_id}",
        already=already,
    )


def _earlier_outcome(portal: Portal, client: Bitrix24Client, code: str) -> ProductCreated:
    link = ItemLink.objects.filter(portal=portal, xero_item_code=code).first()
    if link is None:
        raise ProductNotCreated(
            "This form was already sent and did not create the product (see the message shown then). "
            "Check the fields and send it again.",
            system="connector",
        )
    try:
        iblock_id = _catalog_iblock_id(client)
    except ExternalAPIError:
        iblock_id = None
    return _created(portal, link, code, iblock_id=iblock_id, already=True)


def _form_used(form_key: str) -> bool:
    client = redis_client()
    return bool(client is not None and client.exists(f"used:{form_key}"))


def _mark_form_used(form_key: str) -> None:
    client = redis_client()
    if client is not None:
        client.set(f"used:{form_key}", 1, ex=FORM_USED_TTL_S)


def _log(
    portal: Portal,
    *,
    outcome: str,
    message: str,
    bitrix24_id: int | str = "",
    xero_id: str = "",
    details: dict | None = None,
) -> None:
    SyncLogEntry.objects.create(
        portal=portal,
        direction=Direction.PUSH,
        trigger=Trigger.BUTTON,
        object_kind=SyncLogEntry.ObjectKind.ITEM,
        outcome=outcome,
        bitrix24_id=str(bitrix24_id or ""),
        xero_id=str(xero_id or ""),
        message=message[:2000],
        details=details or {},
    )
