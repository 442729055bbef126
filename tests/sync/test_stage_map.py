"""Default stage maps from SEMANTICS, and storing the map (defaults kept idempotent, edits validated)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from integrations.bitrix24.api.statuses import Stage, stage_from_wire
from sync.models import StageMapping, XeroStatusMapping
from sync.stage_map import stage_map_apply_defaults, stage_map_defaults, stage_map_load, stage_map_save
from tests.factories import PortalFactory

FIXTURES = Path(__file__).parent / "fixtures"


def stages(name: str) -> list[Stage]:
    """A recorded crm.status.list answer, read the way the facade reads it."""
    return [stage_from_wire(row) for row in json.loads((FIXTURES / f"{name}.json").read_text())["result"]]


@pytest.fixture
def portal(db):
    return PortalFactory(domain="acme.bitrix24.com")


def test_default_stages_map_new_to_draft_sent_to_authorised_and_leave_paid_and_unpaid_as_they_are():
    """Paid only when payments are recorded (Xero sets PAID through a payment); never VOIDED or
    DELETED by default (Xero cannot undo them): an admin chooses those."""
    b24_to_xero, xero_to_b24 = stage_map_defaults(stages("stages_default"))

    assert b24_to_xero == {"DT31_3:N": "DRAFT", "DT31_3:S": "AUTHORISED", "DT31_3:P": "", "DT31_3:D": ""}
    paid_allowed, _ = stage_map_defaults(stages("stages_default"), paid_allowed=True)
    assert paid_allowed == {"DT31_3:N": "DRAFT", "DT31_3:S": "AUTHORISED", "DT31_3:P": "PAID", "DT31_3:D": ""}
    assert xero_to_b24 == {
        "DRAFT": "DT31_3:N",
        "SUBMITTED": "DT31_3:N",
        "AUTHORISED": "DT31_3:S",
        "PAID": "DT31_3:P",
        "VOIDED": "DT31_3:D",
        "DELETED": "DT31_3:D",
    }


def test_custom_stages_are_mapped_by_semantics_and_sort_not_by_their_codes():
    b24_to_xero, xero_to_b24 = stage_map_defaults(stages("stages_custom"))

    assert b24_to_xero == {
        "DT31_5:N": "DRAFT",
        "DT31_5:UC_QX81ZA": "AUTHORISED",
        "DT31_5:S": "AUTHORISED",
        "DT31_5:UC_AB12CD": "AUTHORISED",
        "DT31_5:P": "",
        "DT31_5:D": "",
        "DT31_5:UC_WRTOFF": "",
    }
    # AUTHORISED goes to the last in-progress stage by SORT; VOIDED to the first failure stage.
    assert xero_to_b24["AUTHORISED"] == "DT31_5:UC_AB12CD"
    assert xero_to_b24["VOIDED"] == xero_to_b24["DELETED"] == "DT31_5:D"


def test_a_code_that_looks_like_paid_is_not_treated_as_paid_without_success_semantics():
    renamed = [replace(s, semantics="") if s.status_id == "DT31_3:P" else s for s in stages("stages_default")]

    b24_to_xero, xero_to_b24 = stage_map_defaults(renamed)

    assert b24_to_xero["DT31_3:P"] == "AUTHORISED"
    assert xero_to_b24["PAID"] == ""


def test_statuses_left_out_are_not_used_in_either_direction():
    b24_to_xero, xero_to_b24 = stage_map_defaults(
        stages("stages_default"), xero_statuses=["DRAFT", "AUTHORISED", "PAID"]
    )

    assert b24_to_xero["DT31_3:D"] == ""
    assert set(xero_to_b24) == {"DRAFT", "AUTHORISED", "PAID"}


def test_xero_statuses_map_back_into_the_chosen_pipeline():
    both = stages("stages_default") + stages("stages_custom")

    _, into_first = stage_map_defaults(both)
    _, into_custom = stage_map_defaults(both, category_id=5)

    assert into_first["PAID"] == "DT31_3:P"
    assert into_custom["PAID"] == "DT31_5:P"


def test_applying_defaults_writes_one_row_per_stage_and_per_status(portal):
    b24_to_xero, xero_to_b24 = stage_map_apply_defaults(portal, stages("stages_default"))

    assert (b24_to_xero, xero_to_b24) == stage_map_defaults(stages("stages_default"))
    row = StageMapping.objects.get(portal=portal, stage_id="DT31_3:P")
    assert (row.name, row.semantics, row.sort, row.category_id) == ("Paid", "S", 30, 3)
    assert XeroStatusMapping.objects.filter(portal=portal).count() == 6


def test_applying_defaults_again_keeps_the_users_choices_and_adds_new_stages(portal):
    stage_map_apply_defaults(portal, stages("stages_default"))
    stage_map_save(portal, {"DT31_3:S": ""}, {"AUTHORISED": "DT31_3:N"})
    with_new_stage = [
        *stages("stages_default"),
        replace(stages("stages_default")[1], status_id="DT31_3:UC_REMIND", name="Reminder", sort=25),
    ]

    b24_to_xero, xero_to_b24 = stage_map_apply_defaults(portal, with_new_stage)
    again = stage_map_apply_defaults(portal, with_new_stage)

    assert b24_to_xero["DT31_3:S"] == ""
    assert xero_to_b24["AUTHORISED"] == "DT31_3:N"
    assert b24_to_xero["DT31_3:UC_REMIND"] == "AUTHORISED"
    assert again == (b24_to_xero, xero_to_b24)
    assert StageMapping.objects.filter(portal=portal).count() == 5


def test_a_stage_removed_in_bitrix24_is_dropped_and_a_status_pointing_at_it_falls_back(portal):
    stage_map_apply_defaults(portal, stages("stages_custom"))
    stage_map_save(portal, {}, {"VOIDED": "DT31_5:UC_WRTOFF"})
    without_write_off = [s for s in stages("stages_custom") if s.status_id != "DT31_5:UC_WRTOFF"]

    b24_to_xero, xero_to_b24 = stage_map_apply_defaults(portal, without_write_off)

    assert "DT31_5:UC_WRTOFF" not in b24_to_xero
    assert xero_to_b24["VOIDED"] == "DT31_5:D"


def test_a_renamed_stage_takes_its_new_name_but_keeps_its_mapping(portal):
    stage_map_apply_defaults(portal, stages("stages_default"))
    stage_map_save(portal, {"DT31_3:S": "SUBMITTED"}, {})
    renamed = [
        replace(s, name="Awaiting payment") if s.status_id == "DT31_3:S" else s for s in stages("stages_default")
    ]

    stage_map_apply_defaults(portal, renamed)

    row = StageMapping.objects.get(portal=portal, stage_id="DT31_3:S")
    assert (row.name, row.xero_status) == ("Awaiting payment", "SUBMITTED")


def test_saving_changes_only_the_given_entries(portal):
    stage_map_apply_defaults(portal, stages("stages_default"))

    b24_to_xero, xero_to_b24 = stage_map_save(portal, {"DT31_3:N": "SUBMITTED"}, {"DELETED": ""})

    assert b24_to_xero == {"DT31_3:N": "SUBMITTED", "DT31_3:S": "AUTHORISED", "DT31_3:P": "", "DT31_3:D": ""}
    assert xero_to_b24["DELETED"] == ""
    assert xero_to_b24["PAID"] == "DT31_3:P"


def test_saving_unknown_stages_or_statuses_is_refused_with_every_problem_named_and_nothing_saved(portal):
    stage_map_apply_defaults(portal, stages("stages_default"))
    before = stage_map_load(portal)

    with pytest.raises(ValidationError) as refused:
        stage_map_save(
            portal,
            {"DT31_3:N": "APPROVED", "DT31_9:X": "PAID"},
            {"PAID": "DT31_3:GONE", "SETTLED": "DT31_3:P"},
        )

    messages = refused.value.messages
    assert any('"APPROVED"' in m and "DT31_3:N" in m for m in messages)
    assert any('Unknown Bitrix24 stage "DT31_9:X"' in m for m in messages)
    assert any('Unknown Bitrix24 stage "DT31_3:GONE"' in m and "PAID" in m for m in messages)
    assert any('"SETTLED" is not a Xero invoice status' in m for m in messages)
    assert stage_map_load(portal) == before


def test_the_map_of_one_portal_is_not_visible_to_another(portal):
    other = PortalFactory(domain="other.bitrix24.com")
    stage_map_apply_defaults(portal, stages("stages_default"))

    assert stage_map_load(other) == ({}, {})
    with pytest.raises(ValidationError, match="Unknown Bitrix24 stage"):
        stage_map_save(other, {"DT31_3:N": "DRAFT"}, {})
