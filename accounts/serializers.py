"""DRF serializers for the bodies accounts' own pages accept (issue 17): one place checks a body, a
malformed one is a clear 400 and nothing is changed. Bitrix24's installer and frame POSTs are parsed
by integrations.bitrix24.inbound (typed, MalformedPayloadError -> 400); its events and Xero's
webhooks by the ingest path.
"""

from __future__ import annotations

from rest_framework import serializers


class XeroChooseRequest(serializers.Serializer):
    """The organisation picked among several of one Xero consent (POST /xero/choose/)."""

    state = serializers.CharField(max_length=200)
    tenant_id = serializers.CharField(max_length=100)
