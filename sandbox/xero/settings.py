"""Read-only organisation settings: Accounts, TaxRates, Currencies, Organisation."""

from __future__ import annotations

from flask import Blueprint

from sandbox.xero import reference
from sandbox.xero.api import PREFIX, Call, not_found
from sandbox.xero.listing import select
from sandbox.xero.store import Organisation
from sandbox.xero.wire import envelope, json_response, ms_date, number

ACCOUNT_FIELDS = {
    "AccountID",
    "Code",
    "Name",
    "Type",
    "Status",
    "Class",
    "TaxType",
    "EnablePaymentsToAccount",
    "SystemAccount",
    "BankAccountNumber",
    "CurrencyCode",
    "UpdatedDateUTC",
}
TAX_RATE_FIELDS = {"Name", "TaxType", "Status", "ReportTaxType", "DisplayTaxRate", "EffectiveRate"}
CURRENCY_FIELDS = {"Code", "Description"}
# Version and CountryCode of an organisation by its base currency (the SDK validates both).
REGIONS = {"AUD": ("AU", "AU"), "GBP": ("UK", "GB"), "USD": ("US", "US")}


def render_account(account: dict) -> dict:
    body = {key: value for key, value in account.items() if value is not None and key != "UpdatedDateUTC"}
    body["HasAttachments"] = False
    body["UpdatedDateUTC"] = ms_date(account["UpdatedDateUTC"])
    return body


def render_tax_rate(rate: dict) -> dict:
    return {
        "Name": rate["Name"],
        "TaxType": rate["TaxType"],
        "ReportTaxType": rate["ReportTaxType"],
        "CanApplyToAssets": rate["CanApplyToExpenses"],
        "CanApplyToEquity": rate["CanApplyToExpenses"],
        "CanApplyToExpenses": rate["CanApplyToExpenses"],
        "CanApplyToLiabilities": rate["CanApplyToExpenses"],
        "CanApplyToRevenue": rate["CanApplyToRevenue"],
        "DisplayTaxRate": number(rate["Rate"]),
        "EffectiveRate": number(rate["Rate"]),
        "Status": rate["Status"],
        "TaxComponents": [
            {"Name": "GST", "Rate": number(rate["Rate"]), "IsCompound": False, "IsNonRecoverable": False}
        ],
    }


def tax_rate_field(rate: dict, path: str) -> object:
    return rate["Rate"] if path in ("DisplayTaxRate", "EffectiveRate") else rate.get(path)


def render_organisation(org: Organisation) -> dict:
    version, country = REGIONS.get(org.base_currency, ("NZ", "NZ"))
    return {
        "OrganisationID": org.id,
        "APIKey": "",
        "Name": org.name,
        "LegalName": org.name,
        "PaysTax": True,
        "Version": version,
        "OrganisationType": "COMPANY",
        "BaseCurrency": org.base_currency,
        "CountryCode": country,
        "IsDemoCompany": False,
        "OrganisationStatus": "ACTIVE",
        "TaxNumber": "101-2-303",
        "FinancialYearEndDay": 31,
        "FinancialYearEndMonth": 3,
        "SalesTaxBasis": "PAYMENTS",
        "SalesTaxPeriod": "TWOMONTHS",
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive",
        "PeriodLockDate": None,
        "EndOfYearLockDate": None,
        "CreatedDateUTC": ms_date(org.created),
        "Timezone": "NEWZEALANDSTANDARDTIME",
        "OrganisationEntityType": "COMPANY",
        "ShortCode": org.short_code,
        "Class": "PREMIUM",
        "Edition": "BUSINESS",
        "LineOfBusiness": "Professional services",
        "Addresses": [],
        "Phones": [],
        "ExternalLinks": [],
        "PaymentTerms": {},
    }


def currency_rows(org: Organisation) -> list[dict]:
    return [{"Code": code, "Description": reference.CURRENCY_NAMES.get(code, code)} for code in org.currencies]


def register(bp: Blueprint, sandbox, api, dotted) -> None:
    @bp.get(f"{PREFIX}/Accounts")
    @api
    def get_accounts(call: Call):
        with sandbox.lock:
            page = select(call.org.accounts.values(), fields=ACCOUNT_FIELDS, resolve=dotted, paged=False)
            rendered = [render_account(account) for account in page.items]
        return json_response(200, envelope("Accounts", rendered))

    @bp.get(f"{PREFIX}/Accounts/<key>")
    @api
    def get_account(call: Call, key: str):
        with sandbox.lock:
            account = call.org.account(account_id=key)
            if account is None:
                return not_found()
            rendered = render_account(account)
        return json_response(200, envelope("Accounts", [rendered]))

    @bp.get(f"{PREFIX}/TaxRates")
    @api
    def get_tax_rates(call: Call):
        with sandbox.lock:
            page = select(call.org.tax_rates.values(), fields=TAX_RATE_FIELDS, resolve=tax_rate_field, paged=False)
            rendered = [render_tax_rate(rate) for rate in page.items]
        return json_response(200, envelope("TaxRates", rendered))

    @bp.get(f"{PREFIX}/Currencies")
    @api
    def get_currencies(call: Call):
        with sandbox.lock:
            page = select(currency_rows(call.org), fields=CURRENCY_FIELDS, resolve=dotted, paged=False)
        return json_response(200, envelope("Currencies", page.items))

    @bp.get(f"{PREFIX}/Organisation")
    @api
    def get_organisation(call: Call):
        with sandbox.lock:
            rendered = render_organisation(call.org)
        return json_response(200, envelope("Organisations", [rendered]))
