"""integrations/xero/query.py: the `where` terms the typed lookups send (pure functions)."""

from __future__ import annotations

import pytest

from integrations.xero.query import contact_where, contacts_where, sales_invoices_with_url_prefix, where_cost
from integrations.xero.types import ContactMatch


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("ACME Ltd", 'Name=="ACME Ltd"'),
        ("ООО «Ромашка»", 'Name=="ООО «Ромашка»"'),
        ("O'Neill & Sons", 'Name=="O\'Neill & Sons"'),
    ],
)
def test_an_exact_name_term_carries_the_name_untouched(name, where):
    assert contact_where(ContactMatch.name(name)) == where


@pytest.mark.parametrize("name", ['Smith & Sons "Builders" Ltd', "Back\\slash"])
def test_a_name_xeros_where_cannot_carry_is_refused_rather_than_escaped(name):
    # Xero's parser has no working escape inside "..." (400 QueryParseException): searchTerm instead.
    with pytest.raises(ValueError):
        contact_where(ContactMatch.name(name))


def test_terms_chain_with_or_and_cost_what_they_add_to_the_url():
    terms = [ContactMatch.number("B24-CO-7"), ContactMatch.name("Acme Ltd")]
    assert contacts_where(terms) == 'ContactNumber=="B24-CO-7" OR Name=="Acme Ltd"'
    # ContactNumber%3D%3D%22B24-CO-7%22 (33) + %20OR%20 (8)
    assert where_cost(terms[0]) == 41
    with pytest.raises(ValueError):
        contacts_where([])
    with pytest.raises(ValueError):
        contact_where(ContactMatch("EmailAddress", "a@b.c"))


def test_the_orphan_query_names_sales_invoices_by_url_prefix():
    assert (
        sales_invoices_with_url_prefix("https://acme.bitrix24.com/crm/type/31/details/")
        == 'Type=="ACCREC" AND Url.StartsWith("https://acme.bitrix24.com/crm/type/31/details/")'
    )
