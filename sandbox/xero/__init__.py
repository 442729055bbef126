"""The fake Xero: identity server, connections, the Accounting API, and its control routes.

Served under /xero (identity: /xero/identity/connect/{authorize,token,revocation}; /xero/connections;
accounting: /xero/api.xro/2.0/...). The behaviour follows docs/xero-api.md; where Xero rejects, pages
or reshapes, so does this fake.

Control routes (JSON, no auth):

- POST /_sandbox/xero/invoices/<InvoiceID>/pay {"amount"?, "date"?, "reference"?, "account_code"?}
  A payment entered in Xero by a user (default: the whole AmountDue into account 090). Same rules as
  the API (invoice AUTHORISED, amount <= AmountDue). -> {"payment": {...}, "invoice": {...}}; 400 with
  {"error", "message"} when the invoice cannot take it, 404 for an unknown invoice.
- POST /_sandbox/xero/invoices/<InvoiceID>/status {"status": "VOIDED"|"AUTHORISED"|"DELETED"|...}
  A user's status edit, with the API's transition rules. -> {"invoice": {...}}; 400 when refused.
- POST /_sandbox/xero/credit_notes/<CreditNoteID>/refund {"amount"?} A cash refund of an approved credit
  note entered in Xero (default: all remaining credit; PAID at none left). -> {"credit_note": {...}}.
- POST /_sandbox/xero/tax_rates {"TaxRates": [{"Name", "Rate", "TaxType"?, "CanApplyToRevenue"?}], "tenant_id"?}
  Tax rates a Xero user adds (TaxType TAX001, TAX002, ... unless given).
- POST /_sandbox/xero/invoices/<InvoiceID>/edit {any invoice fields, e.g. "LineItems": [...]}
  A user's edit of the invoice in Xero (LineItems replace the lines), with the API's rules: refused
  (400) once paid or voided. -> {"invoice": {...}}; the change's webhook is emitted.
- POST /_sandbox/xero/tokens/expire -> {"expired": n}. Every access token issued so far expires now
  (API calls answer 401 TokenExpired), so clients must refresh.
- POST /_sandbox/xero/settings {"refresh_grace_s": seconds} -> the current settings. How long a used
  refresh token keeps working after rotation (default 1800, on the sandbox clock).
- GET  /_sandbox/xero/organisations -> [{"tenant_id", "name", "base_currency"}].
- POST /_sandbox/xero/organisations {"name", "base_currency"?} -> {"tenant_id", "name", "base_currency"}.
  Another organisation; consents given after this connect it too.
- POST /_sandbox/xero/contacts {"Contacts": [...], "tenant_id"?}
- POST /_sandbox/xero/items {"Items": [...], "tenant_id"?}
- POST /_sandbox/xero/invoices {"Invoices": [...], "tenant_id"?}
  Objects created by a Xero user (same validation as the API; createdByMyApp is false for them) in the
  given organisation (default: the first). -> {"tenant_id", "created", "failed", "<Key>": [one compact
  row per element: ids, number/name, StatusAttributeString, ValidationErrors on failures]}.
- POST /_sandbox/xero/limits ... (sandbox/xero/limits.py) and POST /_sandbox/xero/webhooks {"url", "key"}
  (sandbox/xero/webhooks.py, webhooks_control.py).

Authorize also takes `user=<login>` to choose which Xero user consents (default demo@example.com).
Accounting also serves GET /Invoices/{InvoiceID}/OnlineInvoice (approved sales invoices only; the URL
is a page of this sandbox, /xero/in/<token>, standing in for in.xero.com).
Every invoice/contact change, through the API or these routes, is handed to the webhook emitter.
"""

from flask import Blueprint

from sandbox.xero.world import XeroWorld

__all__ = ["XeroWorld", "create_blueprint"]


def create_blueprint(sandbox) -> Blueprint:
    from sandbox.xero import control, endpoints, endpoints_directory, identity, limits, webhooks_control

    bp = Blueprint("xero", __name__)
    for module in (identity, endpoints, endpoints_directory, control, limits, webhooks_control):
        module.register(bp, sandbox)
    return bp
