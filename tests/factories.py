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

from accounts.models import Portal, XeroConnection
from integrations.bitrix24.entity_types import SMART_INVOICE
from sync.models import ContactLink, InvoiceLink, ItemLink, SyncJob, SyncSettings, Trigger


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


def ready_portal(**fields) -> Portal:
    """A portal that may sync: an active Xero connection row and Setup saved."""
    portal = PortalFactory(**fields)
    XeroConnectionFactory(portal=portal)
    SyncSettingsFactory(portal=portal)
    return portal
