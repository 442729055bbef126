"""Which OAuth scopes each Accounting API call needs (scopes enforced: a token without one is refused).

From the security requirements of xero_accounting.yaml (Invoices/Payments: accounting.transactions;
Contacts: accounting.contacts; Items, Accounts, TaxRates, Currencies, Organisation, BrandingThemes:
accounting.settings; GETs also take the `.read` variant) and Xero's 2026 granular scopes
(../shared/docs/xero-api.md §1.4: accounting.invoices for invoices, credit notes and items,
accounting.payments for payments). Any one of the listed scopes suffices.

A missing scope is answered 401 with `WWW-Authenticate: Bearer error="insufficient_scope"` and
Xero's problem body (xero-api.md §1.4 reports it from Xero's community; the exact body is not
documented).
"""

from __future__ import annotations

INVOICES = ("accounting.transactions", "accounting.invoices")
PAYMENTS = ("accounting.transactions", "accounting.payments")
SETTINGS = ("accounting.settings",)
BY_RESOURCE: dict[str, tuple[str, ...]] = {
    "invoices": INVOICES,
    "creditnotes": INVOICES,
    "quotes": INVOICES,
    "purchaseorders": INVOICES,
    "repeatinginvoices": INVOICES,
    "items": INVOICES + SETTINGS,
    "payments": PAYMENTS,
    "overpayments": PAYMENTS,
    "prepayments": PAYMENTS,
    "batchpayments": PAYMENTS,
    "contacts": ("accounting.contacts",),
    "contactgroups": ("accounting.contacts",),
    "accounts": SETTINGS,
    "taxrates": SETTINGS,
    "currencies": SETTINGS,
    "organisation": SETTINGS,
    "brandingthemes": SETTINGS,
    "trackingcategories": SETTINGS,
}


def allowed(method: str, path: str, granted: list[str] | tuple[str, ...]) -> bool:
    """Whether a token with `granted` scopes may make this call (unknown resources: yes)."""
    rest = path.split("/api.xro/2.0/", 1)[-1]
    resource = rest.split("/", 1)[0].split("?", 1)[0].lower()
    needed = BY_RESOURCE.get(resource)
    if needed is None:
        return True
    accepted = set(needed)
    if method.upper() == "GET":
        accepted |= {f"{scope}.read" for scope in needed}
    return bool(accepted & set(granted))
