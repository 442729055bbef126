"""Companies and contacts (persons), with their requisite addresses (api-reference/crm/companies,
crm/contacts, crm/requisites/addresses).

A client record keeps Bitrix24's own field names in `fields` (TITLE, PHONE [{VALUE, VALUE_TYPE}],
ADDRESS_CITY, …): the pure mappers of sync/mappers/contact.py read and write them field by field,
and their fingerprints are taken over exactly those dicts. `fields` payloads for add/update are
built there as well; everything else about the calls lives here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from integrations.bitrix24.api.command import Command, ListCommand, as_int, list_command

ClientKind = Literal["company", "contact"]
# crm.address ANCHOR_TYPE_ID: the requisite's owner (bitrix24-api.md §8.4) — 4 company, 3 contact.
ANCHOR_TYPE: dict[str, int] = {"company": 4, "contact": 3}
ADDRESS_FIELDS = (
    "ADDRESS",
    "ADDRESS_2",
    "ADDRESS_CITY",
    "ADDRESS_REGION",
    "ADDRESS_PROVINCE",
    "ADDRESS_POSTAL_CODE",
    "ADDRESS_COUNTRY",
    "ADDRESS_COUNTRY_CODE",
)
NAME_SELECT: dict[str, list[str]] = {"company": ["ID", "TITLE"], "contact": ["ID", "NAME", "LAST_NAME"]}
CLIENT_SELECT: dict[str, list[str]] = {
    "company": ["ID", "TITLE", "PHONE", "EMAIL", *ADDRESS_FIELDS],
    "contact": ["ID", "NAME", "LAST_NAME", "PHONE", "EMAIL", *ADDRESS_FIELDS],
}


@dataclass(frozen=True)
class ClientRecord:
    kind: str  # "company" | "contact"
    id: int
    fields: Mapping[str, Any] = field(default_factory=dict)  # as Bitrix24 sent it (see the docstring)

    @property
    def display_name(self) -> str:
        """A company's title, or a person's first and last name ("" when the record has none)."""
        if self.kind == "company":
            return str(self.fields.get("TITLE") or "")
        return " ".join(str(p) for p in (self.fields.get("NAME"), self.fields.get("LAST_NAME")) if p)


@dataclass(frozen=True)
class Address:
    owner_kind: str  # "company" | "contact"
    owner_id: int
    fields: Mapping[str, Any] = field(default_factory=dict)


def _record(kind: str) -> Any:
    def parse(row: dict[str, Any]) -> ClientRecord:
        return ClientRecord(kind=kind, id=as_int(row.get("ID")) or 0, fields=row)

    return parse


def client_names_list(kind: str, ids: Sequence[int | str] | str) -> ListCommand[ClientRecord]:
    """Just enough of these clients for their display_name."""
    return clients_list(kind, ids, select=NAME_SELECT[kind])


def clients_list(
    kind: str, ids: Sequence[int | str] | str, *, select: Sequence[str] | None = None
) -> ListCommand[ClientRecord]:
    """crm.company.list / crm.contact.list of these ids (or a `$result[…]` reference to them)."""
    return list_command(
        f"crm.{kind}.list",
        {
            "filter": {"@ID" if not isinstance(ids, str) else "ID": ids if isinstance(ids, str) else list(ids)},
            "select": list(select or CLIENT_SELECT[kind]),
        },
        _record(kind),
    )


def clients_list_by_filter(kind: str, flt: Mapping[str, Any]) -> ListCommand[ClientRecord]:
    """crm.company.list / crm.contact.list of a filter in crm's own keys, every field."""
    return list_command(f"crm.{kind}.list", {"filter": dict(flt)}, _record(kind))


def clients_modified_since(kind: str, since_iso: str) -> ListCommand[ClientRecord]:
    """The clients of `kind` changed at or after `since_iso`, by id (for the contacts follow-up)."""
    return list_command(
        f"crm.{kind}.list",
        {
            "filter": {">=DATE_MODIFY": since_iso},
            "select": [*CLIENT_SELECT[kind][: -len(ADDRESS_FIELDS)], "DATE_MODIFY", *ADDRESS_FIELDS],
            "order": {"ID": "ASC"},
        },
        _record(kind),
    )


def addresses_of(kind: str, owner_ids: Sequence[int] | str) -> Command[list[Address]]:
    """The requisite addresses of these clients (crm.address.list by ANCHOR), one command."""
    anchor = ANCHOR_TYPE[kind]
    flt: dict[str, Any] = {"ANCHOR_TYPE_ID": anchor}
    flt["@ANCHOR_ID" if not isinstance(owner_ids, str) else "ANCHOR_ID"] = (
        owner_ids if isinstance(owner_ids, str) else list(owner_ids)
    )

    def parse(result: Any) -> list[Address]:
        return [
            Address(owner_kind=kind, owner_id=as_int(a.get("ANCHOR_ID")) or 0, fields=a)
            for a in result or []
            if isinstance(a, dict)
        ]

    return Command("crm.address.list", {"filter": flt}, parse)


def companies_by_origin(originator: str, origin_ids: Sequence[str]) -> ListCommand[tuple[str, int]]:
    """(ORIGIN_ID, company id) of the companies an external system made (ORIGINATOR_ID/ORIGIN_ID)."""

    def row(r: dict[str, Any]) -> tuple[str, int]:
        return str(r.get("ORIGIN_ID") or ""), as_int(r.get("ID")) or 0

    return list_command(
        "crm.company.list",
        {"filter": {"ORIGINATOR_ID": originator, "@ORIGIN_ID": list(origin_ids)}, "select": ["ID", "ORIGIN_ID"]},
        row,
    )


def companies_by_title(title: str) -> Command[list[int]]:
    def parse(result: Any) -> list[int]:
        return [as_int(r.get("ID")) or 0 for r in result or [] if isinstance(r, dict)]

    return Command("crm.company.list", {"filter": {"TITLE": title}, "select": ["ID"]}, parse)


def company_get(company_id: int) -> Command[ClientRecord]:
    def parse(result: Any) -> ClientRecord:
        data = result if isinstance(result, dict) else {}
        return ClientRecord(kind="company", id=as_int(data.get("ID")) or company_id, fields=data)

    return Command("crm.company.get", {"id": company_id}, parse)


def company_add(fields: Mapping[str, Any], *, notify: bool = False) -> Command[int]:
    """crm.company.add; the new id. notify=False keeps the activity stream quiet for bulk adds."""
    params: dict[str, Any] = {"fields": dict(fields)}
    if not notify:
        params["params"] = {"REGISTER_SONET_EVENT": "N"}
    return Command("crm.company.add", params, lambda result: int(result))


def company_update(company_id: int, fields: Mapping[str, Any]) -> Command[Any]:
    return Command("crm.company.update", {"id": company_id, "fields": dict(fields)})


def contact_add(fields: Mapping[str, Any]) -> Command[int]:
    return Command("crm.contact.add", {"fields": dict(fields)}, lambda result: int(result))


# Set on a company at creation and never changed: they are how the import finds it again.
ORIGIN_FIELDS = ("ORIGINATOR_ID", "ORIGIN_ID")
MULTIFIELDS = ("PHONE", "EMAIL")


def _merge_multifield(
    current: list[dict[str, Any]] | None, wanted: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """Changes that make `wanted` present without duplicating: a value already there is left alone;
    a new value takes over an existing entry of the same type (updated by its ID); the rest is added.
    Values the user added in Bitrix24 and Xero never had are kept."""
    current = [dict(v) for v in current or []]
    used: set[str] = set()
    changes: list[dict[str, Any]] = []

    def same(a: str, b: str) -> bool:
        return "".join(a.split()).lower() == "".join(b.split()).lower()

    pending: list[dict[str, Any]] = []
    for value in wanted or []:
        match = next(
            (c for c in current if c["ID"] not in used and same(str(c.get("VALUE", "")), value["VALUE"])), None
        )
        if match is not None:
            used.add(match["ID"])
        else:
            pending.append(value)
    for value in pending:
        slot = next((c for c in current if c["ID"] not in used and c.get("VALUE_TYPE") == value["VALUE_TYPE"]), None)
        if slot is not None:
            used.add(slot["ID"])
            changes.append({"ID": slot["ID"], "VALUE": value["VALUE"], "VALUE_TYPE": value["VALUE_TYPE"]})
        else:
            changes.append(dict(value))
    return changes


def company_update_merging(company_id: int, current: Mapping[str, Any], wanted: Mapping[str, Any]) -> Command[Any]:
    """crm.company.update towards `wanted` (crm.company.add fields) from the company as read now:
    plain fields are set, origin fields left as they are, and phones and e-mails merged so that no
    value is duplicated and the ones a user added in Bitrix24 stay (Bitrix24 updates a
    multi-field entry by its ID and adds one without)."""
    fields = {k: v for k, v in wanted.items() if k not in (*ORIGIN_FIELDS, *MULTIFIELDS)}
    for name in MULTIFIELDS:
        changes = _merge_multifield(current.get(name), wanted.get(name))
        if changes:
            fields[name] = changes
    return company_update(company_id, fields)
