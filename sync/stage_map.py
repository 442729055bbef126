"""The stage map: which Bitrix24 invoice stage means which Xero status, and back.

The caller fetches the stages with the Bitrix24 client (crm.category.list {entityTypeId: 31}, then
crm.status.list {filter: {ENTITY_ID: "SMART_INVOICE_STAGE_<category>"}} per category) and passes the
entries as Bitrix24 returns them: {ID, ENTITY_ID, STATUS_ID, NAME, SORT, SEMANTICS, CATEGORY_ID, ...}.
STATUS_ID ("DT31_3:N") is the stage id invoices carry in `stageId`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Portal
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
    stage_semantics,
)
from sync.models import StageMapping, XeroStatusMapping

StageMap = tuple[dict[str, str], dict[str, str]]


def _category_of(stage: Mapping) -> int:
    return int(stage.get("CATEGORY_ID") or 0)


def _by_category(stages: Iterable[Mapping]) -> dict[int, list[Mapping]]:
    grouped: dict[int, list[Mapping]] = {}
    for stage in stages:
        grouped.setdefault(_category_of(stage), []).append(stage)
    for members in grouped.values():
        members.sort(key=lambda s: (int(s.get("SORT") or 0), str(s["STATUS_ID"])))
    return grouped


def stage_map_defaults(
    stages: list[Mapping],
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
        in_progress = [s for s in members if stage_semantics(s) == IN_PROGRESS]
        for stage in members:
            semantics = stage_semantics(stage)
            if semantics == SUCCESS:
                status = PAID if paid_allowed else ""
            elif semantics == FAILURE:
                status = ""  # never VOIDED/DELETED by default: Xero cannot undo them
            else:
                status = DRAFT if stage is in_progress[0] else AUTHORISED
            b24_to_xero[str(stage["STATUS_ID"])] = only_allowed(status)

    xero_to_b24 = dict.fromkeys(XERO_STATUSES, "")
    if grouped:
        chosen = category_id if category_id is not None else _category_of(stages[0])
        members = grouped.get(chosen, [])
        in_progress = [str(s["STATUS_ID"]) for s in members if stage_semantics(s) == IN_PROGRESS]
        success = [str(s["STATUS_ID"]) for s in members if stage_semantics(s) == SUCCESS]
        failure = [str(s["STATUS_ID"]) for s in members if stage_semantics(s) == FAILURE]
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


def stage_map_load(portal: Portal) -> StageMap:
    b24_to_xero = dict(StageMapping.objects.filter(portal=portal).values_list("stage_id", "xero_status"))
    xero_to_b24 = dict(XeroStatusMapping.objects.filter(portal=portal).values_list("xero_status", "stage_id"))
    return b24_to_xero, xero_to_b24


@transaction.atomic
def stage_map_apply_defaults(
    portal: Portal, stages: list[Mapping], *, category_id: int | None = None, paid_allowed: bool | None = None
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
    default_b24, default_xero = stage_map_defaults(stages, category_id=category_id, paid_allowed=paid_allowed)
    existing = {row.stage_id: row for row in StageMapping.objects.filter(portal=portal)}

    fetched_categories = {_category_of(s) for s in stages}
    current_ids = set()
    for stage in stages:
        stage_id = str(stage["STATUS_ID"])
        current_ids.add(stage_id)
        values = {
            "category_id": _category_of(stage),
            "name": str(stage.get("NAME") or stage_id)[:255],
            "semantics": stage_semantics(stage),
            "sort": int(stage.get("SORT") or 0),
        }
        row = existing.get(stage_id)
        if row is None:
            StageMapping.objects.create(portal=portal, stage_id=stage_id, xero_status=default_b24[stage_id], **values)
        elif any(getattr(row, k) != v for k, v in values.items()):
            StageMapping.objects.filter(pk=row.pk).update(**values)
    gone = [sid for sid, row in existing.items() if row.category_id in fetched_categories and sid not in current_ids]
    StageMapping.objects.filter(portal=portal, stage_id__in=gone).delete()

    known_stages = set(StageMapping.objects.filter(portal=portal).values_list("stage_id", flat=True))
    stored = {row.xero_status: row for row in XeroStatusMapping.objects.filter(portal=portal)}
    for status, default_stage in default_xero.items():
        row = stored.get(status)
        if row is None:
            XeroStatusMapping.objects.create(portal=portal, xero_status=status, stage_id=default_stage)
        elif row.stage_id and row.stage_id not in known_stages:
            XeroStatusMapping.objects.filter(pk=row.pk).update(stage_id=default_stage)
    return stage_map_load(portal)


@transaction.atomic
def stage_map_save(portal: Portal, b24_to_xero: Mapping[str, str], xero_to_b24: Mapping[str, str]) -> StageMap:
    """Store the user's edits to the map (only the entries given change). Everything is checked
    first; on any problem nothing is saved and ValidationError lists every problem."""
    known_stages = set(StageMapping.objects.filter(portal=portal).values_list("stage_id", flat=True))
    problems = []
    for stage_id, status in b24_to_xero.items():
        if stage_id not in known_stages:
            problems.append(f'Unknown Bitrix24 stage "{stage_id}". Reload the stages from Bitrix24 and try again.')
        if status and status not in XERO_STATUSES:
            problems.append(
                f'"{status}" (for stage "{stage_id}") is not a Xero invoice status; use one of '
                f"{', '.join(XERO_STATUSES)} or leave it empty."
            )
    for status, stage_id in xero_to_b24.items():
        if status not in XERO_STATUSES:
            problems.append(f'"{status}" is not a Xero invoice status; use one of {", ".join(XERO_STATUSES)}.')
        if stage_id and stage_id not in known_stages:
            problems.append(
                f'Unknown Bitrix24 stage "{stage_id}" (for Xero status {status}). Reload the stages from '
                "Bitrix24 and try again."
            )
    if problems:
        raise ValidationError(problems)

    for stage_id, status in b24_to_xero.items():
        StageMapping.objects.filter(portal=portal, stage_id=stage_id).update(xero_status=status or "")
    for status, stage_id in xero_to_b24.items():
        XeroStatusMapping.objects.update_or_create(
            portal=portal, xero_status=status, defaults={"stage_id": stage_id or ""}
        )
    return stage_map_load(portal)
