"""Reading the portal's invoice pipelines and stages from Bitrix24 into the stage map.

Runs at install, from sandbox_setup and from the setup page: new stages (custom ones included) get
their default mapping by semantics; choices the user already made are kept (stage_map_apply_defaults).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from accounts.models import Portal
from integrations.bitrix24.client import Bitrix24Client
from sync.models import SyncSettings
from sync.stage_map import stage_map_apply_defaults

SMART_INVOICE = 31


@dataclass(frozen=True)
class StageRefresh:
    default_category_id: int
    stages: list[dict]


def bitrix24_invoice_stages(*, client: Bitrix24Client) -> StageRefresh:
    """Every stage of every invoice pipeline, in two HTTP calls (categories, then one batch)."""
    categories = client.result("crm.category.list", {"entityTypeId": SMART_INVOICE})["categories"]
    default = next((c for c in categories if c.get("isDefault") == "Y"), categories[0] if categories else None)
    if default is None:
        return StageRefresh(default_category_id=0, stages=[])
    commands = {
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
    return StageRefresh(default_category_id=int(default["id"]), stages=stages)


def stage_map_refresh(*, portal: Portal, client: Bitrix24Client | None = None) -> StageRefresh:
    """Fetch the stages and apply default mappings to new ones; make sure SyncSettings exists."""
    refresh = bitrix24_invoice_stages(client=client or Bitrix24Client(portal))
    with transaction.atomic():
        SyncSettings.objects.get_or_create(portal=portal)
        stage_map_apply_defaults(portal, refresh.stages, category_id=refresh.default_category_id)
    return refresh
