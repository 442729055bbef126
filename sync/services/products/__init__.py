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

Modules: results.py (settings, the answer and the refusal), form.py (what the form offers),
create.py (the two creates and their compensation), record.py (double submits and the log).
"""

from sync.services.products.create import _base_price_type, product_create_in_both
from sync.services.products.form import (
    ProductFormOptions,
    _catalog_iblock_id,
    product_form_options,
    xero_connection_for,
)
from sync.services.products.results import ProductCreated, ProductNotCreated

__all__ = [
    "ProductCreated",
    "ProductFormOptions",
    "ProductNotCreated",
    "_base_price_type",
    "_catalog_iblock_id",
    "product_create_in_both",
    "product_form_options",
    "xero_connection_for",
]
