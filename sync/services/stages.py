"""Reading the portal's invoice pipelines and stages from Bitrix24 into the stage map.

Runs at install, from sandbox_setup and from the setup page: new stages (custom ones included) get
their default mapping by semantics; choices the user already made are kept (stage_map_apply_defaults).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from accounts.models import Portal
from integrations.bitrix24.client import Bitrix24Client
from integrations.bitrix24.entity_types import OLD_INVOICE, SMART_INVOICE
from sync.models import SyncSettings
from sync.stage_map import stage_map_apply_defaults

OLD_STATUS_ENTITY = "INVOICE_STATUS"


@dataclass(frozen=True)
class StageRefresh:
    default_category_id: int
    stages: list[dict]


def bitrix24_invoice_stages(
    *, client: Bitrix24Client, entity_types: tuple[int, ...] = (SMART_INVOICE,)
) -> StageRefresh:
    """Every stage of every new-invoice pipeline, in two HTTP calls (categories, then one batch),
    and the old-invoice statuses (crm.status.list of INVOICE_STATUS, the method the docs name for
    them since 19.0; custom ones included) in that batch when the portal has old invoices."""
    commands: dict = {}
    if OLD_INVOICE in entity_types:
        commands["old"] = ("crm.status.list", {"filter": {"ENTITY_ID": OLD_STATUS_ENTITY}, "order": {"SORT": "ASC"}})
    categories = []
    if SMART_INVOICE in entity_types:
        categories = client.result("crm.category.list", {"entityTypeId": SMART_INVOICE})["categories"]
    default = next((c for c in categories if c.get("isDefault") == "Y"), categories[0] if categories else None)
    if default is None and not commands:
        return StageRefresh(default_category_id=0, stages=[])
    commands |= {
        f"c{c['id']}": (
            "crm.status.list",
            {"filter": {"ENTITY_ID": f"SMART_INVOICE_STAGE_{c['id']}"}, "order": {"SORT": "ASC"}},
        )
        for c in categories
    }
    batch = client.batch_all(commands)
    stages: list[dict] = []
    for key in commands:
        stages.extend(batch.value(key) or [])
    for stage in stages:
        if stage.get("ENTITY_ID") == OLD_STATUS_ENTITY:
            stage["CATEGORY_ID"] = None  # old statuses are not in a pipeline: "category 0"
    return StageRefresh(default_category_id=int(default["id"]) if default else 0, stages=stages)


def stage_map_refresh(*, portal: Portal, client: Bitrix24Client | None = None) -> StageRefresh:
    """Fetch the stages and apply default mappings to new ones; make sure SyncSettings exists."""
    refresh = bitrix24_invoice_stages(client=client or Bitrix24Client(portal), entity_types=portal.invoice_entity_types)
    with transaction.atomic():
        SyncSettings.objects.get_or_create(portal=portal)
        stage_map_apply_defaults(portal, refresh.stages, category_id=refresh.default_category_id or None)
    return refresh
