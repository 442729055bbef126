"""Invoice stages and statuses: the pipelines (categories) of new invoices and the stages of each,
and the statuses of old invoices (crm.category.list, crm.status.list; api-reference/crm/status,
crm/universal/category)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from integrations.bitrix24.api.command import Command, as_int, as_str
from integrations.bitrix24.entity_types import OLD_INVOICE, SMART_INVOICE

# crm.status ENTITY_ID of old-invoice statuses; new invoices' stages are per pipeline.
OLD_STATUS_ENTITY = "INVOICE_STATUS"


def smart_invoice_stage_entity(category_id: int) -> str:
    return f"SMART_INVOICE_STAGE_{category_id}"


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    is_default: bool


@dataclass(frozen=True)
class Stage:
    """One stage of a new-invoice pipeline, or one old-invoice status (category None: old statuses
    are in no pipeline)."""

    status_id: str  # what invoices carry in stageId ("DT31_3:N"), or an old STATUS_ID ("P")
    name: str
    sort: int
    semantics: str  # "" in progress, "S" success, "F" failure (null and "" both mean in progress)
    category_id: int | None


def stage_from_wire(row: dict[str, Any]) -> Stage:
    """A crm.status.list entry as a Stage."""
    semantics = as_str(row.get("SEMANTICS")).upper()
    old = row.get("ENTITY_ID") == OLD_STATUS_ENTITY
    return Stage(
        status_id=as_str(row.get("STATUS_ID")),
        name=as_str(row.get("NAME")),
        sort=as_int(row.get("SORT")) or 0,
        semantics=semantics if semantics in ("S", "F") else "",
        category_id=None if old else as_int(row.get("CATEGORY_ID")),
    )


def _stages(result: Any) -> list[Stage]:
    return [stage_from_wire(row) for row in result or [] if isinstance(row, dict)]


def categories_list(entity_type: int = SMART_INVOICE) -> Command[list[Category]]:
    def parse(result: Any) -> list[Category]:
        rows = result.get("categories") if isinstance(result, dict) else None
        return [
            Category(
                id=as_int(c.get("id")) or 0, name=as_str(c.get("name")), is_default=as_str(c.get("isDefault")) == "Y"
            )
            for c in rows or []
            if isinstance(c, dict)
        ]

    return Command("crm.category.list", {"entityTypeId": entity_type}, parse)


def statuses_list(entity_id: str) -> Command[list[Stage]]:
    """crm.status.list of one ENTITY_ID, in SORT order."""
    return Command("crm.status.list", {"filter": {"ENTITY_ID": entity_id}, "order": {"SORT": "ASC"}}, _stages)


def invoice_stages_list(entity_type: int, category_id: int = 0) -> Command[list[Stage]]:
    """The stages an invoice of `entity_type` can be on: its pipeline's (new), or the statuses (old)."""
    if entity_type == OLD_INVOICE:
        return statuses_list(OLD_STATUS_ENTITY)
    return statuses_list(smart_invoice_stage_entity(category_id))
