"""The stage map: which Bitrix24 invoice stage means which Xero status, and back.

The caller reads the stages through the Bitrix24 facade (sync.services.stages: the pipelines, then
the stages of each) and passes them as integrations.bitrix24.api.statuses.Stage; `status_id`
("DT31_3:N") is the stage id invoices carry in `stageId`.

Old invoices (entity type 5) have statuses instead of pipelines: their Stage has no category, so
they are "category 0" here, and their status_id ("N", "P", a custom letter) is what the invoices
carry as their stage. The Bitrix24 -> Xero map holds
both kinds at once (the ids never collide); the Xero -> Bitrix24 map is kept per entity type, since
one Xero status must move a new invoice to a stage and an old one to a status.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Portal
from integrations.bitrix24.api.statuses import Stage
from integrations.bitrix24.entity_types import OLD_INVOICE, SMART_INVOICE
from sync.mappers.stage import (
    AUTHORISED,
    DELETED,
    DRAFT,
    FAILURE,
    IN_PROGRESS,
    PAID,
    SUBMITTED,
    SUCCESS,
    VOIDED,
    XERO_STATUSES,
)
from sync.models import StageMapping, XeroStatusMapping

StageMap = tuple[dict[str, str], dict[str, str]]
OLD_STATUS_CATEGORY = 0  # the "pipeline" of old-invoice statuses in StageMapping.category_id


def entity_type_of_category(category_id: int) -> int:
    return OLD_INVOICE if category_id == OLD_STATUS_CATEGORY else SMART_INVOICE


def _category_of(stage: Stage) -> int:
    return stage.category_id or 0


def _by_category(stages: Iterable[Stage]) -> dict[int, list[Stage]]:
    grouped: dict[int, list[Stage]] = {}
    for stage in stages:
        grouped.setdefault(_category_of(stage), []).append(stage)
    for members in grouped.values():
        members.sort(key=lambda s: (s.sort, s.status_id))
    return grouped


def stage_map_defaults(
    stages: list[Stage],
    *,
    xero_statuses: Iterable[str] = XERO_STATUSES,
    category_id: int | None = None,
    paid_allowed: bool = False,
) -> StageMap:
    """The map a new portal starts with, decided by each stage's SEMANTICS (never by its code).

    Bitrix24 -> Xero, per pipeline in SORT order: the first in-progress stage (the new invoice) ->
    DRAFT, later in-progress stages ("Sent to client", custom ones) -> AUTHORISED, the success stage ->
    PAID only when `paid_allowed` (payments are recorded to a chosen bank account: Xero sets PAID
    through a payment and refuses it otherwise), else "" (leave Xero as it is). Failure stages -> ""
    too: VOIDED and DELETED cannot be undone in Xero, so only an admin chooses them.
    Xero -> Bitrix24, in one pipeline (`category_id`, else the first stage's): DRAFT and SUBMITTED ->
    the first in-progress stage, AUTHORISED -> the last in-progress stage, PAID -> the success stage,
    VOIDED and DELETED -> the first failure stage. A status with no such stage maps to "" (leave alone).
    `xero_statuses` limits which statuses are used at all; others become "".
    """
    allowed = set(xero_statuses)

    def only_allowed(status: str) -> str:
        return status if status in allowed else ""

    grouped = _by_category(stages)
    b24_to_xero: dict[str, str] = {}
    for members in grouped.values():
        in_progress = [s for s in members if s.semantics == IN_PROGRESS]
        for stage in members:
            semantics = stage.semantics
            if semantics == SUCCESS:
                status = PAID if paid_allowed else ""
            elif semantics == FAILURE:
                status = ""  # never VOIDED/DELETED by default: Xero cannot undo them
            else:
                status = DRAFT if stage is in_progress[0] else AUTHORISED
            b24_to_xero[stage.status_id] = only_allowed(status)

    xero_to_b24 = dict.fromkeys(XERO_STATUSES, "")
    if grouped:
        chosen = category_id if category_id is not None else _category_of(stages[0])
        members = grouped.get(chosen, [])
        in_progress = [s.status_id for s in members if s.semantics == IN_PROGRESS]
        success = [s.status_id for s in members if s.semantics == SUCCESS]
        failure = [s.status_id for s in members if s.semantics == FAILURE]
        if in_progress:
            xero_to_b24[DRAFT] = xero_to_b24[SUBMITTED] = in_progress[0]
            xero_to_b24[AUTHORISED] = in_progress[-1]
        if success:
            xero_to_b24[PAID] = success[0]
        if failure:
            xero_to_b24[VOIDED] = xero_to_b24[DELETED] = failure[0]
    xero_to_b24 = {status: stage for status, stage in xero_to_b24.items() if status in allowed}
    return b24_to_xero, xero_to_b24


def paid_status_allowed(portal: Portal) -> bool:
    """A stage may map to PAID only while payments are recorded to a chosen bank account."""
    from sync.models import SyncSettings

    return (
        SyncSettings.objects.filter(portal=portal, record_payment_on_paid=True)
        .exclude(payment_account_code="")
        .exists()
    )


def stage_map_load(portal: Portal, entity_type: int | None = None) -> StageMap:
    """(every stage/status -> Xero status, Xero status -> stage of `entity_type`'s invoices; by
    default the portal's first kind: new invoices, or old ones on a portal with only those)."""
    entity_type = entity_type or portal.invoice_entity_types[0]
    b24_to_xero = dict(StageMapping.objects.filter(portal=portal).values_list("stage_id", "xero_status"))
    xero_to_b24 = dict(
        XeroStatusMapping.objects.filter(portal=portal, entity_type=entity_type).values_list("xero_status", "stage_id")
    )
    return b24_to_xero, xero_to_b24


@transaction.atomic
def stage_map_apply_defaults(
    portal: Portal, stages: list[Stage], *, category_id: int | None = None, paid_allowed: bool | None = None
) -> StageMap:
    """Bring the stored map in line with the portal's current stages, keeping the user's choices.

    New stages get their default status; known stages keep theirs but take the current name, sort
    and semantics; stages gone from a fetched pipeline are removed, and a Xero status pointing at
    one falls back to its default. Running it twice changes nothing the second time.
    """
    # Serialise per portal: two setup pages submitting at once would race on the unique rows.
    Portal.objects.select_for_update().filter(pk=portal.pk).first()
    if paid_allowed is None:
        paid_allowed = paid_status_allowed(portal)
    smart_stages = [s for s in stages if entity_type_of_category(_category_of(s)) == SMART_INVOICE]
    default_xero = stage_map_defaults(smart_stages, category_id=category_id)[1] if smart_stages else {}
    default_b24 = {}
    for category, members in _by_category(stages).items():
        default_b24.update(stage_map_defaults(members, category_id=category, paid_allowed=paid_allowed)[0])
    existing = {row.stage_id: row for row in StageMapping.objects.filter(portal=portal)}

    fetched_categories = {_category_of(s) for s in stages}
    current_ids = set()
    for stage in stages:
        stage_id = stage.status_id
        current_ids.add(stage_id)
        values = {
            "category_id": _category_of(stage),
            "name": (stage.name or stage_id)[:255],
            "semantics": stage.semantics,
            "sort": stage.sort,
        }
        row = existing.get(stage_id)
        if row is None:
            StageMapping.objects.create(portal=portal, stage_id=stage_id, xero_status=default_b24[stage_id], **values)
        elif any(getattr(row, k) != v for k, v in values.items()):
            StageMapping.objects.filter(pk=row.pk).update(**values)
    gone = [sid for sid, row in existing.items() if row.category_id in fetched_categories and sid not in current_ids]
    StageMapping.objects.filter(portal=portal, stage_id__in=gone).delete()

    known = dict(StageMapping.objects.filter(portal=portal).values_list("stage_id", "category_id"))
    # One Xero -> Bitrix24 map per kind of invoice fetched: new invoices into the default pipeline,
    # old ones into their statuses.
    targets = {}
    for category in sorted(fetched_categories):
        entity_type = entity_type_of_category(category)
        if entity_type == OLD_INVOICE:
            targets[entity_type] = stage_map_defaults(stages, category_id=category)[1]
        elif entity_type not in targets:
            targets[entity_type] = default_xero
    for entity_type, defaults in targets.items():
        stored = {
            row.xero_status: row for row in XeroStatusMapping.objects.filter(portal=portal, entity_type=entity_type)
        }
        for status, default_stage in defaults.items():
            row = stored.get(status)
            if row is None:
                XeroStatusMapping.objects.create(
                    portal=portal, entity_type=entity_type, xero_status=status, stage_id=default_stage
                )
            elif row.stage_id and (
                row.stage_id not in known or entity_type_of_category(known[row.stage_id]) != entity_type
            ):
                XeroStatusMapping.objects.filter(pk=row.pk).update(stage_id=default_stage)
    return stage_map_load(portal)


@transaction.atomic
def stage_map_save(
    portal: Portal,
    b24_to_xero: Mapping[str, str],
    xero_to_b24: Mapping[str, str],
    *,
    entity_type: int | None = None,
    more_xero_to_b24: Mapping[int, Mapping[str, str]] | None = None,
) -> StageMap:
    """Store the user's edits to the map (only the entries given change). `xero_to_b24` is the map of
    `entity_type`'s invoices (the portal's first kind by default); `more_xero_to_b24` the maps of
    other kinds by entity type. Everything is checked first; on any problem nothing is saved and
    ValidationError lists every problem."""
    entity_type = entity_type or portal.invoice_entity_types[0]
    maps = {entity_type: xero_to_b24, **(more_xero_to_b24 or {})}
    categories = dict(StageMapping.objects.filter(portal=portal).values_list("stage_id", "category_id"))
    known_stages = set(categories)
    problems = []
    for stage_id, status in b24_to_xero.items():
        if stage_id not in known_stages:
            problems.append(f'Unknown Bitrix24 stage "{stage_id}". Reload the stages from Bitrix24 and try again.')
        if status and status not in XERO_STATUSES:
            problems.append(
                f'"{status}" (for stage "{stage_id}") is not a Xero invoice status; use one of '
                f"{', '.join(XERO_STATUSES)} or leave it empty."
            )
    for kind, kind_map in maps.items():
        for status, stage_id in kind_map.items():
            if status not in XERO_STATUSES:
                problems.append(f'"{status}" is not a Xero invoice status; use one of {", ".join(XERO_STATUSES)}.')
            if stage_id and stage_id not in known_stages:
                problems.append(
                    f'Unknown Bitrix24 stage "{stage_id}" (for Xero status {status}). Reload the stages from '
                    "Bitrix24 and try again."
                )
            elif stage_id and entity_type_of_category(categories[stage_id]) != kind:
                what = "an old invoice status" if kind == OLD_INVOICE else "a new invoice stage"
                problems.append(f'"{stage_id}" (for Xero status {status}) is not {what}.')
    if problems:
        raise ValidationError(problems)

    for stage_id, status in b24_to_xero.items():
        StageMapping.objects.filter(portal=portal, stage_id=stage_id).update(xero_status=status or "")
    for kind, kind_map in maps.items():
        for status, stage_id in kind_map.items():
            XeroStatusMapping.objects.update_or_create(
                portal=portal, entity_type=kind, xero_status=status, defaults={"stage_id": stage_id or ""}
            )
    return stage_map_load(portal, entity_type)
