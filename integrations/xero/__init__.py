"""Xero: the only code that speaks HTTP to it, and the only code that imports xero-python.

client.py    XeroClient: named, typed calls (invoices_upsert, contacts_find, items_list, ...)
types.py     what they return: plain frozen dataclasses (Decimal money, per-element write results)
convert.py   our Xero JSON -> SDK models, SDK models -> types
transport.py the SDK behind the shared throttle and the single-flight token refresh
errors.py    what the SDK raised, classified as retryable / permanent; element_errors for batches
oauth.py     consent URL, code exchange, refresh, /connections, revoke (plain requests, explicit timeouts)
webhooks.py  verification of Xero's signed webhooks
"""
