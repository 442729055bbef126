"""Xero's `where` language, for the lookups the typed methods take as values (ContactMatch, a URL
prefix, "active only").

Xero's parser reads a string literal between double quotes and has no working escape for a `"`
inside it (400 QueryParseException, XeroAPI SDK issues); a backslash is as unreliable. So a value
holding either is not put in a `where` at all (`where_safe` says so; contacts_search finds it by
searchTerm instead). The client URL-encodes the whole expression once, as the SDK does; `where_cost`
is what a term adds to that URL, for callers keeping a chain of terms short.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from integrations.xero.types import ContactMatch

OR = " OR "
_OR_COST = len(quote(OR, safe=""))


def where_safe(value: str) -> bool:
    """Whether Xero's `where` parser takes this value inside a "..." literal."""
    return '"' not in value and "\\" not in value


def contact_where(match: ContactMatch) -> str:
    """`Name=="Acme Ltd"`; ValueError for a value a `where` cannot carry (see where_safe)."""
    if match.field not in ("ContactNumber", "Name"):
        raise ValueError(f"contacts are not looked up by {match.field!r}")
    if not where_safe(match.value):
        raise ValueError(f"{match.field} {match.value!r} cannot go in a where filter; use contacts_search")
    return f'{match.field}=="{match.value}"'


def contacts_where(matches: Sequence[ContactMatch]) -> str:
    """The OR-chain of the matches' terms."""
    if not matches:
        raise ValueError("a contacts lookup needs at least one term")
    return OR.join(contact_where(m) for m in matches)


def sales_invoices_with_url_prefix(prefix: str) -> str:
    """ACCREC invoices whose Url starts with `prefix` (ours point back at the Bitrix24 invoice)."""
    if not where_safe(prefix):
        raise ValueError(f"URL prefix {prefix!r} cannot go in a where filter")
    return f'Type=="ACCREC" AND Url.StartsWith("{prefix}")'


ACTIVE = 'Status=="ACTIVE"'


def where_cost(match: ContactMatch) -> int:
    """The URL-encoded length this term adds to an OR-chain."""
    return len(quote(contact_where(match), safe="")) + _OR_COST
