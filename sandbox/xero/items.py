"""Items (the product catalogue): unique codes, sales/purchase details, rendering."""

from __future__ import annotations

import copy

from sandbox.xero.store import Organisation, Outcome, name_key
from sandbox.xero.wire import (
    ZERO_GUID,
    ms_date,
    new_id,
    number,
    round_money,
    to_decimal,
    utc_now,
    validation_errors,
)

TEXT_FIELDS = {"Code": 30, "Name": 50, "Description": 4000, "PurchaseDescription": 4000}
QUERY_FIELDS = {"ItemID", "Code", "Name", "Description", "IsSold", "IsPurchased", "UpdatedDateUTC"}


def new_item() -> dict:
    return {
        "ItemID": None,
        "Code": "",
        "IsSold": True,
        "IsPurchased": True,
        "SalesDetails": {},
        "PurchaseDetails": {},
        "UpdatedDateUTC": None,
    }


def find_target(org: Organisation, element: dict, target_id: str | None, create_only: bool) -> tuple[dict | None, str]:
    key = target_id or element.get("ItemID")
    if key:
        found = org.item_by_id_or_code(str(key)) if target_id else org.items.get(str(key).lower())
        if found is None:
            return None, f"Item with ItemID {key} could not be found"
        return found, ""
    code = element.get("Code")
    if not create_only and isinstance(code, str) and code:
        # POST /Items updates the item that already has this code.
        return org.item_by_id_or_code(code), ""
    return None, ""


def write_item(
    org: Organisation, element: object, *, target_id: str | None = None, create_only: bool = False, unitdp: int = 2
) -> Outcome:
    if not isinstance(element, dict):
        return Outcome(entity=new_item(), errors=["Item code must be specified"])
    existing, problem = find_target(org, element, target_id, create_only)
    item = copy.deepcopy(existing) if existing else new_item()
    errors = [problem] if problem else []
    for field, limit in TEXT_FIELDS.items():
        value = element.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            errors.append(f"{field} must be text")
        elif len(value) > limit:
            errors.append(f"{field} must not be more than {limit} characters long.")
        else:
            item[field] = value.strip() if field == "Code" else value
    if not item["Code"]:
        errors.append("Item code must be specified")
    else:
        holder = org.item_by_code.get(name_key(item["Code"]))
        if holder and holder != item["ItemID"]:
            errors.append(f"Item code '{item['Code']}' already exists")
    for flag in ("IsSold", "IsPurchased"):
        if isinstance(element.get(flag), bool):
            item[flag] = element[flag]
    for field in ("SalesDetails", "PurchaseDetails"):
        if element.get(field) is not None:
            item[field] = _details(org, element[field], unitdp, errors)
    # Xero clears the side an item is no longer used on.
    if not item["IsSold"]:
        item["SalesDetails"], item["Description"] = {}, None
    if not item["IsPurchased"]:
        item["PurchaseDetails"], item["PurchaseDescription"] = {}, None
    if errors:
        return Outcome(entity=item, errors=errors)
    created = existing is None
    if created:
        item["ItemID"] = new_id()
    item["UpdatedDateUTC"] = utc_now()
    org.index_item(item, existing)
    return Outcome(entity=item, created=created)


def _details(org: Organisation, raw: object, unitdp: int, errors: list[str]) -> dict:
    if not isinstance(raw, dict):
        errors.append("SalesDetails and PurchaseDetails must be objects")
        return {}
    details = {}
    if raw.get("UnitPrice") is not None:
        try:
            details["UnitPrice"] = round_money(to_decimal(raw["UnitPrice"]), unitdp)
        except ValueError:
            errors.append("UnitPrice must be a number")
    for field in ("AccountCode", "COGSAccountCode"):
        if raw.get(field):
            if org.account(code=raw[field]) is None:
                errors.append("Account must be valid.")
            details[field] = str(raw[field])
    if raw.get("TaxType"):
        if raw["TaxType"] not in org.tax_rates:
            errors.append("Tax rate must be valid.")
        details["TaxType"] = raw["TaxType"]
    return details


def render_item(item: dict, unitdp: int = 2) -> dict:
    body = {"ItemID": item["ItemID"] or ZERO_GUID, "Code": item["Code"]}
    for field in ("Name", "Description", "PurchaseDescription"):
        if item.get(field) is not None:
            body[field] = item[field]
    body["UpdatedDateUTC"] = ms_date(item["UpdatedDateUTC"])
    for field in ("PurchaseDetails", "SalesDetails"):
        details = dict(item[field])
        if "UnitPrice" in details:
            details["UnitPrice"] = number(round_money(details["UnitPrice"], unitdp))
        body[field] = details
    body["IsTrackedAsInventory"] = False
    body["IsSold"] = item["IsSold"]
    body["IsPurchased"] = item["IsPurchased"]
    return body


def render_outcome(outcome: Outcome, unitdp: int) -> dict:
    body = render_item(outcome.entity, unitdp)
    body["StatusAttributeString"] = "OK" if outcome.ok else "ERROR"
    if not outcome.ok:
        body["ValidationErrors"] = validation_errors(outcome.errors)
    return body
