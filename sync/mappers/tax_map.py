"""The tax map checked against Xero (issue 11 point 3, issue 12 point 2): a Bitrix24 tax rate maps only
to a Xero sales tax rate with the same *effective* rate; the default map is proposed by rate.

Pure functions over the organisation's tax rates as the reference cache holds them:
{"tax_type", "name", "rate" (effective %, may be None), "revenue" (can apply to revenue),
"report_tax_type"?}. Bitrix24 rates are the tax map's keys: "15", "7.5", "0", and "none" for rows
without a tax rate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation

NO_TAX_KEY = "none"


def rate_of_key(key: str) -> Decimal:
    return Decimal(0) if key == NO_TAX_KEY else Decimal(str(key))


def key_label(key: str) -> str:
    return "rows without a tax rate" if key == NO_TAX_KEY else f"{key}%"


def _rate(entry: Mapping) -> Decimal | None:
    try:
        return None if entry.get("rate") is None else Decimal(str(entry["rate"]))
    except InvalidOperation:
        return None


def sales_rates(tax_rates: Iterable[Mapping]) -> list[Mapping]:
    return [r for r in tax_rates if r.get("revenue")]


def _no_tax(entry: Mapping) -> bool:
    return entry.get("tax_type") == "NONE" or str(entry.get("report_tax_type") or "") in ("NONE", "EXEMPTOUTPUT")


def _zero_rated(entry: Mapping) -> bool:
    text = f"{entry.get('tax_type', '')} {entry.get('name', '')}".lower()
    return "zero" in text


def matching(key: str, tax_rates: Iterable[Mapping]) -> list[Mapping]:
    """The organisation's sales tax rates this Bitrix24 rate may map to, the best proposal first:
    no tax -> the no-tax type; 0% -> the zero-rated output type; else the same rate, output first."""
    wanted = rate_of_key(key)
    same = [r for r in sales_rates(tax_rates) if _rate(r) == wanted]
    order: Callable[[Mapping], tuple]
    if key == NO_TAX_KEY:
        order = lambda r: (r.get("tax_type") != "NONE", not _no_tax(r), _zero_rated(r), r.get("name", ""))  # noqa: E731
    elif wanted == 0:
        order = lambda r: (not _zero_rated(r), _no_tax(r), r.get("name", ""))  # noqa: E731
    else:
        order = lambda r: (str(r.get("report_tax_type") or "OUTPUT") != "OUTPUT", r.get("name", ""))  # noqa: E731
    return sorted(same, key=order)


def propose(key: str, tax_rates: Iterable[Mapping]) -> str:
    found = matching(key, tax_rates)
    return str(found[0]["tax_type"]) if found else ""


def proposed_map(keys: Iterable[str], tax_rates: Sequence[Mapping]) -> dict[str, str]:
    out = {}
    for key in keys:
        chosen = propose(key, tax_rates)
        if chosen:
            out[key] = chosen
    return out


def mismatch(key: str, tax_type: str, tax_rates: Iterable[Mapping]) -> str:
    """Why `tax_type` may not carry this Bitrix24 rate ("" when it may)."""
    by_type = {str(r.get("tax_type")): r for r in tax_rates}
    entry = by_type.get(tax_type)
    if entry is None:
        return f"{tax_type} is not one of the organisation's active tax rates in Xero."
    name = entry.get("name") or tax_type
    if not entry.get("revenue"):
        return f'"{name}" cannot be used on sales in Xero; choose a sales (output) tax rate.'
    rate = _rate(entry)
    if rate != rate_of_key(key):
        shown = "no rate" if rate is None else f"{_plain(rate)}%"
        wanted = "0% (no tax)" if key == NO_TAX_KEY else f"{key}%"
        return (
            f'"{name}" is {shown} in Xero, not {wanted}: Xero would compute other tax than Bitrix24. '
            f"Choose a Xero tax rate of {wanted}."
        )
    return ""


def unmapped_message(missing: Sequence[str], tax_rates: Sequence[Mapping], rows_by_key: Mapping[str, list[int]]) -> str:
    """One message naming every rate without a Xero tax type, and the Xero tax rates (by name) that match."""
    parts = []
    for key in missing:
        rows = rows_by_key.get(key) or []
        where = f" (row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows[:10]))})" if rows else ""
        found = matching(key, tax_rates)
        if not tax_rates:
            parts.append(f"{key_label(key)}{where}: map it to a Xero sales tax rate of {_plain(rate_of_key(key))}%")
        elif found:
            names = " or ".join(f'"{r.get("name")}"' for r in found[:3])
            parts.append(f"{key_label(key)}{where}: map it to {names}")
        else:
            parts.append(
                f"{key_label(key)}{where}: Xero has no sales tax rate of {_plain(rate_of_key(key))}%; add one in "
                "Xero (Settings > Tax rates), then map it"
            )
    return (
        "The connector's tax map has no Xero tax rate for " + "; ".join(parts) + ". Do it in Setup > Tax rates "
        "and sync the invoice again."
    )


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text
