"""After a submission: the outcome answered again for a double submit, the form marked used, the log."""

from __future__ import annotations

import logging

from accounts.models import Portal
from connector.coordination import redis_client
from integrations.bitrix24.api import Bitrix24Api
from integrations.common.errors import ExternalAPIError
from sync.models import Direction, ItemLink, SyncLogEntry, Trigger
from sync.services.products.form import _catalog_iblock_id
from sync.services.products.results import FORM_USED_TTL_S, ProductCreated, ProductNotCreated

logger = logging.getLogger(__name__)

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


def _earlier_outcome(portal: Portal, client: Bitrix24Api, code: str) -> ProductCreated:
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
