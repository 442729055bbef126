"""Xero: the only code that speaks HTTP to it.

oauth.py   consent URL, code exchange, refresh, /connections, revoke (plain requests, explicit timeouts)
client.py  XeroClient: xero-python behind the shared throttle and the single-flight token refresh
errors.py  what the SDK raised, classified as retryable / permanent; element_errors for batches
webhooks.py  verification of Xero's signed webhooks
"""
