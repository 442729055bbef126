"""The reference data every fresh organisation starts with: a small NZ chart of accounts, GST tax rates,
enabled currencies. Shaped like Demo Company (NZ) so account codes and tax types look real."""

from __future__ import annotations

from decimal import Decimal

# (Code, Name, Type, TaxType, EnablePaymentsToAccount, SystemAccount)
CHART_OF_ACCOUNTS = [
    ("090", "Business Bank Account", "BANK", "NONE", False, None),
    ("091", "Business Savings Account", "BANK", "NONE", False, None),
    ("200", "Sales", "REVENUE", "OUTPUT2", False, None),
    ("260", "Other Revenue", "REVENUE", "OUTPUT2", False, None),
    ("270", "Interest Income", "REVENUE", "NONE", False, None),
    ("310", "Cost of Goods Sold", "DIRECTCOSTS", "INPUT2", False, None),
    ("400", "Advertising", "OVERHEADS", "INPUT2", False, None),
    ("404", "Bank Fees", "OVERHEADS", "NONE", False, None),
    ("408", "Cleaning", "OVERHEADS", "INPUT2", False, None),
    ("412", "Consulting & Accounting", "EXPENSE", "INPUT2", False, None),
    ("429", "General Expenses", "OVERHEADS", "INPUT2", False, None),
    ("453", "Office Expenses", "OVERHEADS", "INPUT2", False, None),
    ("610", "Accounts Receivable", "CURRENT", "NONE", False, "DEBTORS"),
    ("620", "Prepayments", "CURRENT", "NONE", True, None),
    ("630", "Inventory", "INVENTORY", "NONE", False, None),
    ("710", "Office Equipment", "FIXED", "INPUT2", False, None),
    ("800", "Accounts Payable", "CURRLIAB", "NONE", False, "CREDITORS"),
    ("820", "GST", "CURRLIAB", "NONE", False, "GST"),
    ("877", "Tracking Transfers", "CURRLIAB", "NONE", False, "TRACKINGTRANSFERS"),
    ("960", "Retained Earnings", "EQUITY", "NONE", False, "RETAINEDEARNINGS"),
    ("970", "Owner A Funds Introduced", "EQUITY", "NONE", False, None),
]

ACCOUNT_CLASS = {
    "BANK": "ASSET",
    "CURRENT": "ASSET",
    "INVENTORY": "ASSET",
    "FIXED": "ASSET",
    "NONCURRENT": "ASSET",
    "PREPAYMENT": "ASSET",
    "CURRLIAB": "LIABILITY",
    "LIABILITY": "LIABILITY",
    "TERMLIAB": "LIABILITY",
    "EQUITY": "EQUITY",
    "REVENUE": "REVENUE",
    "SALES": "REVENUE",
    "OTHERINCOME": "REVENUE",
    "DIRECTCOSTS": "EXPENSE",
    "EXPENSE": "EXPENSE",
    "OVERHEADS": "EXPENSE",
    "DEPRECIATN": "EXPENSE",
}

# (TaxType, Name, rate %, ReportTaxType, applies to revenue, applies to expenses)
TAX_RATES = [
    ("OUTPUT2", "15% GST on Income", Decimal("15"), "OUTPUT", True, False),
    ("INPUT2", "15% GST on Expenses", Decimal("15"), "INPUT", False, True),
    ("NONE", "No GST", Decimal("0"), "NONE", True, True),
    ("ZERORATEDOUTPUT", "Zero Rated", Decimal("0"), "OUTPUT", True, False),
    ("EXEMPTOUTPUT", "GST Exempt Income", Decimal("0"), "EXEMPTOUTPUT", True, False),
    ("EXEMPTINPUT", "GST Exempt Expenses", Decimal("0"), "EXEMPTINPUT", False, True),
    ("GSTONIMPORTS", "GST on Imports", Decimal("0"), "GSTONIMPORTS", False, True),
]

CURRENCY_NAMES = {
    "NZD": "New Zealand Dollar",
    "AUD": "Australian Dollar",
    "USD": "United States Dollar",
    "EUR": "Euro",
    "GBP": "British Pound",
    "CAD": "Canadian Dollar",
    "JPY": "Japanese Yen",
}

ENABLED_FOREIGN_CURRENCIES = ["AUD", "USD", "EUR", "GBP"]

# Day rates (units of the currency per 1 NZD) used when a foreign-currency invoice names no CurrencyRate.
DAY_RATES = {
    "AUD": Decimal("0.910000"),
    "USD": Decimal("0.600000"),
    "EUR": Decimal("0.550000"),
    "GBP": Decimal("0.470000"),
    "CAD": Decimal("0.820000"),
    "JPY": Decimal("90.000000"),
    "NZD": Decimal("1.000000"),
}

DEFAULT_ORGANISATION_NAME = "Demo Company (NZ)"
DEFAULT_BASE_CURRENCY = "NZD"
