"""Reading the portal's invoice pipelines and stages from Bitrix24 into the stage map.

Runs at install, from sandbox_setup and from the setup page: new stages (custom ones included) get
their default mapping by semantics; choices the user already made are kept (stage_map_apply_defaults).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from accounts.models import Portal
from integrations.bitrix24.api import Bitrix24Api, statuses
from integrations.bitrix24.api.command import Command
from integrations.bitrix24.api.statuses import Stage
from integrations.bitrix24.entity_types import OLD_INVOICE, SMART_INVOICE
from sync.models import SyncSettings
from sync.stage_map import stage_map_apply_defaults


@dataclass(frozen=True)
class StageRefresh:
    default_category_id: int
    stages: list[Stage]


def bitrix24_invoice_stages(*, client: Bitrix24Api, entity_types: tuple[int, ...] = (SMART_INVOICE,)) -> StageRefresh:
    """Every stage of every new-invoice pipeline, in two HTTP calls (categories, then one batch),
    and the old-invoice statuses (crm.status.list of INVOICE_STATUS, the method the docs name for
    them since 19.0; custom ones included) in that batch when the portal has old invoices."""
    commands: dict[str, Command[list[Stage]]] = {}
    if OLD_INVOICE in entity_types:
        commands["old"] = statuses.invoice_stages_list(OLD_INVOICE)
    categories: list[statuses.Category] = []
    if SMART_INVOICE in entity_types:
        categories = client.categories_list(SMART_INVOICE)
    default = next((c for c in categories if c.is_default), categories[0] if categories else None)
    if default is None and not commands:
        return StageRefresh(default_category_id=0, stages=[])
    commands |= {f"c{c.id}": statuses.invoice_stages_list(SMART_INVOICE, c.id) for c in categories}
    batch = client.batch_all(commands)
    stages: list[Stage] = []
    for key in commands:
        stages.extend(batch.value(key))
    return StageRefresh(default_category_id=default.id if default else 0, stages=stages)


def stage_map_refresh(*, portal: Portal, client: Bitrix24Api | None = None) -> StageRefresh:
    """Fetch the stages and apply default mappings to new ones; make sure SyncSettings exists."""
    refresh = bitrix24_invoice_stages(
        client=client or Bitrix24Api.for_portal(portal), entity_types=portal.invoice_entity_types
    )
    with transaction.atomic():
        SyncSettings.objects.get_or_create(portal=portal)
        stage_map_apply_defaults(portal, refresh.stages, category_id=refresh.default_category_id or None)
    return refresh
