"""Creating the product in both systems: rights, the Xero item, the Bitrix24 product, compensation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from accounts.models import Portal, XeroConnection
from integrations.bitrix24.api import Bitrix24Api, catalog
from integrations.common.errors import ExternalAPIError, PermanentError
from integrations.common.locks import LockTimeout, redis_lock
from integrations.xero.client import XeroClient
from integrations.xero.types import Item
from sync.mappers.canonical import canonical_hash, idempotency_key
from sync.mappers.contact import product_to_xero_item
from sync.models import ItemLink, SyncLogEntry
from sync.services.products.form import _catalog_iblock_id, xero_connection_for
from sync.services.products.record import _created, _earlier_outcome, _form_used, _log, _mark_form_used
from sync.services.products.results import (
    DEFAULT_BASE_PRICE_TYPE,
    FORM_LOCK_TTL_S,
    FORM_LOCK_WAIT_S,
    ZERO_GUID,
    ProductCreated,
    ProductNotCreated,
)

logger = logging.getLogger(__name__)

# --- create both ---------------------------------------------------------------------------------


def product_create_in_both(*, portal: Portal, client: Bitrix24Api, form_data: Mapping[str, Any]) -> ProductCreated:
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
    *, portal: Portal, client: Bitrix24Api, connection: XeroConnection, form_data: Mapping[str, Any]
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
    item_id = xero_item.item_id

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


def _require_catalog_rights(client: Bitrix24Api) -> None:
    """ProductNotCreated unless Bitrix24 says this user may create catalog products."""
    try:
        allowed = client.user_admin()
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


def _xero_item_create(*, portal: Portal, xero: XeroClient, item: dict, nonce: str, code: str, name: str) -> Item:
    """PUT /Items with one element; the created item, or ProductNotCreated with Xero's words."""
    # The payload hash is part of the key: a corrected form is a different request, and Xero
    # refuses a key reused for a different body.
    key = idempotency_key(portal.member_id, f"{code}:{nonce}", canonical_hash(item)[:16], operation="item")
    try:
        answers = xero.items_create([item], idempotency_key=key)
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
    answer = answers[0] if answers else None
    problems = list(answer.errors) if answer is not None else ["Xero answered without the item."]
    if answer is not None and answer.status == "ERROR" and not problems:
        problems = ["Xero refused the item."]
    created = answer.result if answer is not None else None
    if problems or created is None or (created.item_id or ZERO_GUID) == ZERO_GUID:
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
    client: Bitrix24Api,
    *,
    iblock_id: int,
    section_id: str,
    name: str,
    description: str,
    item_id: str,
    price: Decimal,
    currency: str,
) -> int:
    xml_id = f"xero:{item_id}"
    adding = catalog.new_product(
        iblock_id=iblock_id,
        name=name,
        xml_id=xml_id,
        section_id=int(section_id) if section_id else None,
        description=description,
    )
    try:
        product_id = client.run(adding)
    except ExternalAPIError as exc:
        if exc.retryable:
            # A timeout or 5xx may still have created it: find it by our external id and take it back.
            _bitrix24_orphan_delete(client, iblock_id=iblock_id, xml_id=xml_id)
        raise
    try:
        client.price_add(product_id, _base_price_type(client), str(price), currency)
    except ExternalAPIError as exc:
        # The product without its price is a half: delete it before the Xero item goes too.
        try:
            client.product_delete(product_id)
        except ExternalAPIError as cleanup:
            exc.details = [*exc.details, f"Bitrix24 product {product_id} could not be deleted: {cleanup.message}"]
            exc.payload = {"orphan_bitrix24_product_id": product_id}
        raise
    return product_id


def _bitrix24_orphan_delete(client: Bitrix24Api, *, iblock_id: int, xml_id: str) -> None:
    try:
        for product in client.run(catalog.products_by_xml_id(iblock_id, [xml_id])):
            client.product_delete(product.id)
    except ExternalAPIError:
        logger.warning("could not check for a half-made Bitrix24 product %s", xml_id, exc_info=True)


def _base_price_type(client: Bitrix24Api) -> int:
    try:
        rows = client.price_types_base()
    except ExternalAPIError:
        return DEFAULT_BASE_PRICE_TYPE
    return rows[0].id if rows else DEFAULT_BASE_PRICE_TYPE


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
        xero.item_delete(item_id)
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
