"""factory-boy factories for the rows tests build without going through the sandbox (issue 17).

A test that needs a portal, a connection or a link but no API call builds it here, so the required
fields live in one place: `PortalFactory()`, `XeroConnectionFactory(portal=portal)`,
`InvoiceLinkFactory(portal=portal, bitrix24_id=42)`. Tests that exercise install or OAuth use the
sandbox instead (tests/sync/conftest.py: `acme`, `acme_xero`).
"""

from __future__ import annotations

import uuid

import factory
from factory.django import DjangoModelFactory

from accounts.models import FrameSession, Portal, XeroConnection, XeroOAuthState
from integrations.bitrix24.entity_types import SMART_INVOICE
from sync.models import (
    ContactLink,
    Direction,
    InboxEvent,
    InvoiceLink,
    ItemLink,
    Source,
    StageMapping,
    SyncJob,
    SyncLogEntry,
    SyncSettings,
    Trigger,
    XeroStatusMapping,
)


class PortalFactory(DjangoModelFactory):
    class Meta:
        model = Portal

    member_id = factory.LazyFunction(lambda: uuid.uuid4().hex)
    domain = factory.Sequence(lambda n: f"portal{n}.bitrix24.com")
    client_endpoint = factory.LazyAttribute(lambda portal: f"https://{portal.domain}/rest/")


class XeroConnectionFactory(DjangoModelFactory):
    """An active connection with a tenant (no tokens: for code that never calls Xero)."""

    class Meta:
        model = XeroConnection

    portal = factory.SubFactory(PortalFactory)
    tenant_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    tenant_name = factory.Sequence(lambda n: f"Organisation {n} Ltd")


class SyncSettingsFactory(DjangoModelFactory):
    """Setup saved: automatic sync runs (before it, events are held; sync/services/gate.py)."""

    class Meta:
        model = SyncSettings
        django_get_or_create = ("portal",)

    portal = factory.SubFactory(PortalFactory)
    setup_completed = True


class InvoiceLinkFactory(DjangoModelFactory):
    class Meta:
        model = InvoiceLink

    portal = factory.SubFactory(PortalFactory)
    bitrix24_entity_type = SMART_INVOICE
    bitrix24_id = factory.Sequence(lambda n: n + 1)


class ContactLinkFactory(DjangoModelFactory):
    class Meta:
        model = ContactLink

    portal = factory.SubFactory(PortalFactory)
    bitrix24_kind = ContactLink.Kind.COMPANY
    bitrix24_id = factory.Sequence(lambda n: n + 1)
    xero_contact_id = factory.LazyFunction(uuid.uuid4)
    xero_name = factory.Sequence(lambda n: f"Customer {n}")


class ItemLinkFactory(DjangoModelFactory):
    class Meta:
        model = ItemLink

    portal = factory.SubFactory(PortalFactory)
    bitrix24_product_id = factory.Sequence(lambda n: n + 1)
    xero_item_id = factory.LazyFunction(uuid.uuid4)
    xero_item_code = factory.Sequence(lambda n: f"ITEM-{n}")


class SyncJobFactory(DjangoModelFactory):
    """A pending push of one new invoice (`target` "31:<id>"), as an event would enqueue it."""

    class Meta:
        model = SyncJob

    portal = factory.SubFactory(PortalFactory)
    kind = SyncJob.Kind.PUSH_INVOICE
    target = factory.Sequence(lambda n: f"{SMART_INVOICE}:{n + 1}")
    trigger = Trigger.EVENT


class FrameSessionFactory(DjangoModelFactory):
    """A user signed in from the app frame (no Bitrix24 tokens: for code that never calls Bitrix24)."""

    class Meta:
        model = FrameSession

    portal = factory.SubFactory(PortalFactory)
    bitrix_user_id = factory.Sequence(lambda n: n + 1)
    name = factory.Sequence(lambda n: f"User {n}")


class XeroOAuthStateFactory(DjangoModelFactory):
    """A Xero consent started from the app (its `state`), not yet come back."""

    class Meta:
        model = XeroOAuthState

    portal = factory.SubFactory(PortalFactory)
    nonce = factory.LazyFunction(lambda: uuid.uuid4().hex)


class InboxEventFactory(DjangoModelFactory):
    """A Bitrix24 invoice event as the inbound endpoint stores it (received, not yet processed)."""

    class Meta:
        model = InboxEvent

    portal = factory.SubFactory(PortalFactory)
    source = Source.BITRIX24
    event_type = "ONCRMDYNAMICITEMUPDATE"
    dedupe_key = factory.Sequence(lambda n: f"b24:{SMART_INVOICE}:{n + 1}:1700000000")
    payload = factory.LazyAttribute(lambda event: {"event": event.event_type})


class SyncLogEntryFactory(DjangoModelFactory):
    """A push of one invoice to Xero that was created there."""

    class Meta:
        model = SyncLogEntry

    portal = factory.SubFactory(PortalFactory)
    direction = Direction.PUSH
    trigger = Trigger.EVENT
    outcome = SyncLogEntry.Outcome.CREATED
    bitrix24_id = factory.Sequence(lambda n: str(n + 1))


class StageMappingFactory(DjangoModelFactory):
    """A Bitrix24 invoice stage of the default pipeline, mapped to no Xero status."""

    class Meta:
        model = StageMapping

    portal = factory.SubFactory(PortalFactory)
    category_id = 0
    stage_id = factory.Sequence(lambda n: f"DT{SMART_INVOICE}_0:S{n}")
    name = factory.Sequence(lambda n: f"Stage {n}")


class XeroStatusMappingFactory(DjangoModelFactory):
    """Where a Xero status moves the Bitrix24 invoice ("" = leave its stage alone)."""

    class Meta:
        model = XeroStatusMapping

    portal = factory.SubFactory(PortalFactory)
    xero_status = "PAID"
    stage_id = ""


def ready_portal(**fields) -> Portal:
    """A portal that may sync: an active Xero connection row and Setup saved."""
    portal = PortalFactory(**fields)
    XeroConnectionFactory(portal=portal)
    SyncSettingsFactory(portal=portal)
    return portal
