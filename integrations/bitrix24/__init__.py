"""Everything that speaks to Bitrix24: the REST client (client.py), the OAuth server (oauth.py),
error classification (errors.py), batch command encoding (php_query.py), and parsing/verifying
what Bitrix24 POSTs to us (inbound.py)."""
