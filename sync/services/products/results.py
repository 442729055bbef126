"""Add New Product's settings, what it answers (ProductCreated) and how it refuses (ProductNotCreated)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
