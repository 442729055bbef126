"""The constraints that keep the sync exactly-once, checked against PostgreSQL."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from sync.mappers.invoice import ItemRef
from sync.models import (
    InvoiceLink,
    SyncJob,
    SyncSettings,
)
from tests.factories import (
    ContactLinkFactory,
    InboxEventFactory,
    InvoiceLinkFactory,
    ItemLinkFactory,
    PortalFactory,
    StageMappingFactory,
    SyncJobFactory,
    SyncSettingsFactory,
    XeroStatusMappingFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def portal():
    return PortalFactory(domain="acme.bitrix24.com")


@pytest.fixture
def other_portal():
    return PortalFactory(domain="other.bitrix24.com")


def refused(create) -> bool:
    try:
        with transaction.atomic():
            create()
    except IntegrityError:
        return True
    return False


def test_a_bitrix24_invoice_links_to_one_xero_invoice_per_portal(portal, other_portal):
    InvoiceLinkFactory(portal=portal, bitrix24_id=42, xero_invoice_id=uuid.uuid4())

    assert refused(lambda: InvoiceLinkFactory(portal=portal, bitrix24_id=42))
    assert not refused(lambda: InvoiceLinkFactory(portal=portal, bitrix24_entity_type=5, bitrix24_id=42))
    assert not refused(lambda: InvoiceLinkFactory(portal=other_portal, bitrix24_id=42))


def test_a_xero_invoice_links_to_one_bitrix24_invoice_but_many_links_may_wait_for_creation(portal):
    xero_id = uuid.uuid4()
    InvoiceLinkFactory(portal=portal, bitrix24_id=1, xero_invoice_id=xero_id)

    assert refused(lambda: InvoiceLinkFactory(portal=portal, bitrix24_id=2, xero_invoice_id=xero_id))
    InvoiceLinkFactory(portal=portal, bitrix24_id=3)
    InvoiceLinkFactory(portal=portal, bitrix24_id=4)
    assert InvoiceLink.objects.filter(portal=portal, xero_invoice_id__isnull=True).count() == 2


def test_the_fencing_update_succeeds_once_for_the_version_it_read(portal):
    """The compare-and-set the push and pull engines save their results with (InvoiceLink.save_if_version)."""
    link = InvoiceLinkFactory(portal=portal, bitrix24_id=42)

    assert InvoiceLink.save_if_version(link.pk, 0, last_pushed_hash="f" * 64)
    # The slower worker read version 0 too, and loses: its values are not written.
    assert not InvoiceLink.save_if_version(link.pk, 0, last_pushed_hash="0" * 64)
    link.refresh_from_db()
    assert (link.version, link.last_pushed_hash) == (1, "f" * 64)
    assert InvoiceLink.save_if_version(link.pk, 1, last_pushed_hash="e" * 64)  # re-read, then it wins


def test_a_pull_that_lost_the_race_keeps_the_stage_the_winner_saved(portal):
    """sync.services.pull.decide.link_state_record re-reads after a lost compare-and-set and keeps the newer stage."""
    from sync.services.pull.decide import link_state_record as _record
    from sync.services.pull.state import XeroInvoiceState

    link = InvoiceLinkFactory(portal=portal, bitrix24_id=42, last_bitrix24_stage_id="DT31_1:N")
    stale = InvoiceLink.objects.get(pk=link.pk)  # the pull read version 0 ...
    assert InvoiceLink.save_if_version(link.pk, 0, last_bitrix24_stage_id="DT31_1:S")  # ... a push saved first

    invoice = XeroInvoiceState(
        invoice_id=uuid.uuid4(), number="INV-1", status="AUTHORISED", amount_paid=Decimal("0"), updated_at=None
    )
    _record(stale, invoice, stage_id="DT31_1:P")

    link.refresh_from_db()
    assert link.version == 2 and link.last_xero_status == "AUTHORISED"
    assert link.last_bitrix24_stage_id == "DT31_1:S"  # the push's newer fact, not the pull's stale one


def test_contact_links_are_unique_both_ways(portal):
    xero_id = uuid.uuid4()
    ContactLinkFactory(
        portal=portal, bitrix24_kind="company", bitrix24_id=12, xero_contact_id=xero_id, xero_name="ACME"
    )

    assert refused(
        lambda: ContactLinkFactory(
            portal=portal, bitrix24_kind="company", bitrix24_id=12, xero_contact_id=uuid.uuid4(), xero_name="ACME 2"
        )
    )
    assert refused(
        lambda: ContactLinkFactory(
            portal=portal, bitrix24_kind="contact", bitrix24_id=12, xero_contact_id=xero_id, xero_name="ACME"
        )
    )
    assert not refused(
        lambda: ContactLinkFactory(
            portal=portal, bitrix24_kind="contact", bitrix24_id=12, xero_contact_id=uuid.uuid4(), xero_name="Jo"
        )
    )


def test_item_links_are_unique_by_product_item_and_code(portal):
    ItemLinkFactory(portal=portal, bitrix24_product_id=7, xero_item_id=uuid.uuid4(), xero_item_code="WIDGET")

    assert refused(
        lambda: ItemLinkFactory(portal=portal, bitrix24_product_id=7, xero_item_id=uuid.uuid4(), xero_item_code="W2")
    )
    assert refused(
        lambda: ItemLinkFactory(
            portal=portal, bitrix24_product_id=8, xero_item_id=uuid.uuid4(), xero_item_code="WIDGET"
        )
    )


def test_one_mapping_row_per_stage_and_per_xero_status(portal):
    StageMappingFactory(portal=portal, stage_id="DT31_3:N", category_id=3, name="New", xero_status="DRAFT")
    XeroStatusMappingFactory(portal=portal, xero_status="PAID", stage_id="DT31_3:P")

    assert refused(lambda: StageMappingFactory(portal=portal, stage_id="DT31_3:N", category_id=3, name="New"))
    assert refused(lambda: XeroStatusMappingFactory(portal=portal, xero_status="PAID", stage_id=""))
    assert refused(
        lambda: StageMappingFactory(portal=portal, stage_id="DT31_3:X", category_id=3, name="X", xero_status="SETTLED")
    )


def test_a_redelivered_event_is_stored_once(portal):
    def receive():
        InboxEventFactory(
            portal=portal,
            source="bitrix24",
            dedupe_key="ONCRMDYNAMICITEMUPDATE:31:24:1723538517",
            event_type="ONCRMDYNAMICITEMUPDATE",
            payload={},
        )

    receive()

    assert refused(receive)
    assert not refused(
        lambda: InboxEventFactory(
            portal=None,
            source="xero",
            dedupe_key="ONCRMDYNAMICITEMUPDATE:31:24:1723538517",
            event_type="UPDATE",
            payload={},
        )
    )


def test_only_one_pending_job_per_target_but_a_running_one_may_have_a_successor(portal):
    SyncJobFactory(portal=portal, kind="push_invoice", target="31:42", trigger="event")

    assert refused(lambda: SyncJobFactory(portal=portal, kind="push_invoice", target="31:42", trigger="sweep"))
    SyncJob.objects.filter(portal=portal).update(status="running")
    assert not refused(lambda: SyncJobFactory(portal=portal, kind="push_invoice", target="31:42", trigger="event"))


def test_settings_are_one_per_portal_and_paying_needs_an_account(portal):
    SyncSettingsFactory(portal=portal)

    # A second row inserted as such (the factory itself would get the portal's row, not insert).
    assert refused(lambda: SyncSettingsFactory.build(portal=portal).save())
    assert refused(lambda: SyncSettings.objects.filter(portal=portal).update(record_payment_on_paid=True))
    SyncSettings.objects.filter(portal=portal).update(record_payment_on_paid=True, payment_account_code="090")


def test_settings_start_with_the_documented_defaults(portal):
    settings = SyncSettingsFactory(portal=portal)

    assert (
        settings.default_account_code,
        settings.record_payment_on_paid,
        settings.create_bitrix24_payment_on_paid,
    ) == ("200", False, False)
    assert settings.tax_type_map() == {None: "NONE"}


def test_settings_hand_the_invoice_mapper_its_tax_map_and_the_portals_domain(portal):
    settings = SyncSettingsFactory(portal=portal, tax_types={"15": "OUTPUT2", "none": "NONE"}, line_amounts="exclusive")

    mapping = settings.to_mapping_settings(items={23: ItemRef(code="WIDGET-PRO")})

    assert mapping.tax_type_for(None) == "NONE"
    assert mapping.tax_type_for(Decimal("15.00")) == "OUTPUT2"
    assert (mapping.bitrix24_domain, mapping.force_exclusive, mapping.items[23].code) == (
        "acme.bitrix24.com",
        True,
        "WIDGET-PRO",
    )


def test_a_tax_map_with_a_key_that_is_not_a_rate_is_refused_on_validation(portal):
    settings = SyncSettings(portal=portal, tax_types={"fifteen": "OUTPUT2"})

    with pytest.raises(ValidationError, match="fifteen"):
        settings.clean()
