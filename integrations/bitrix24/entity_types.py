"""Bitrix24's CRM entity type ids for invoices, defined once (docs/bitrix24-api.md).

A portal has new invoices (smart invoices, the universal crm.item.* methods with entityTypeId 31,
stages of pipelines), old ones (crm.invoice.*, entity type 5, statuses), or both. Every layer that
needs the numbers imports them from here.
"""

SMART_INVOICE = 31  # new invoices: crm.item.* with entityTypeId 31
OLD_INVOICE = 5  # old invoices: crm.invoice.* (CCrmOwnerType::Invoice)
INVOICE_ENTITY_TYPES = (SMART_INVOICE, OLD_INVOICE)
