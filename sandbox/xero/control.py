"""Control routes of the fake Xero (/_sandbox/xero/...): what a Xero user or the test harness does
outside the API. The full list is in the docstring of sandbox/xero/__init__.py."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from sandbox.xero import contacts, credit_notes, invoice_render, invoices, items, payments, reference
from sandbox.xero.store import Outcome
from sandbox.xero.wire import to_decimal

PAYMENT_ACCOUNT = "090"


def _bad_request(message: str, status: int = 400):
    return jsonify({"error": "bad_request", "message": message}), status


def add_tax_rate(org, element: dict) -> Outcome:
    name = element.get("Name")
    try:
        rate = to_decimal(element.get("Rate", element.get("EffectiveRate")))
        if rate < 0:
            raise ValueError
    except (TypeError, ValueError):
        return Outcome(entity=dict(element), errors=["Rate must be a number of 0 or more"])
    if not isinstance(name, str) or not name.strip():
        return Outcome(entity=dict(element), errors=["Name is required"])
    if any(r["Name"] == name.strip() for r in org.tax_rates.values()):
        return Outcome(entity=dict(element), errors=["A tax rate with this name already exists"])
    tax_type = element.get("TaxType") or f"TAX{sum(1 for t in org.tax_rates if t.startswith('TAX')) + 1:03d}"
    revenue = bool(element.get("CanApplyToRevenue", True))
    org.tax_rates[tax_type] = {
        "Name": name.strip(),
        "TaxType": tax_type,
        "Rate": rate,
        "ReportTaxType": element.get("ReportTaxType") or ("OUTPUT" if revenue else "INPUT"),
        "Status": "ACTIVE",
        "CanApplyToRevenue": revenue,
        "CanApplyToExpenses": bool(element.get("CanApplyToExpenses", not revenue)),
    }
    return Outcome(entity=org.tax_rates[tax_type], created=True)


def register(bp: Blueprint, sandbox) -> None:
    world = sandbox.xero

    def body() -> dict:
        parsed = request.get_json(silent=True)
        return parsed if isinstance(parsed, dict) else {}

    @bp.post("/_sandbox/xero/invoices/<invoice_id>/pay")
    def pay_invoice(invoice_id: str):
        given = body()
        with sandbox.lock:
            found = world.find_invoice(invoice_id)
            if found is None:
                return _bad_request(f"No invoice {invoice_id}", 404)
            org, invoice = found
            try:
                amount = to_decimal(given["amount"]) if given.get("amount") is not None else invoice.get("AmountDue")
            except ValueError:
                return _bad_request('"amount" must be a number')
            element = {
                "Invoice": {"InvoiceID": invoice["InvoiceID"]},
                "Account": {"Code": given.get("account_code") or PAYMENT_ACCOUNT},
                "Amount": amount,
                "Reference": given.get("reference") or "",
            }
            if given.get("date"):
                element["Date"] = given["date"]
            outcome = payments.create_payment(org, element)
            if not outcome.ok:
                return _bad_request("; ".join(outcome.errors))
            result = {
                "payment": payments.render_payment(org, outcome.entity),
                "invoice": invoice_render.render_invoice(org, invoice),
            }
        world.emit(org.id, outcome.events)
        return jsonify(result)

    @bp.post("/_sandbox/xero/credit_notes/<note_id>/refund")
    def refund_credit_note(note_id: str):
        """A cash refund of a credit note entered in Xero (the whole remaining credit by default)."""
        given = body()
        with sandbox.lock:
            for org in world.organisations.values():
                note = credit_notes.find(org, note_id)
                if note is not None:
                    break
            else:
                return _bad_request(f"No credit note {note_id}", 404)
            try:
                amount = to_decimal(given["amount"]) if given.get("amount") is not None else note["AmountDue"]
            except ValueError:
                return _bad_request('"amount" must be a number')
            problems = credit_notes.refund(org, note, amount)
            if problems:
                return _bad_request("; ".join(problems))
            return jsonify({"credit_note": credit_notes.render_credit_note(org, note)})

    @bp.post("/_sandbox/xero/invoices/<invoice_id>/status")
    def set_invoice_status(invoice_id: str):
        status = body().get("status")
        if not isinstance(status, str):
            return _bad_request('"status" is required, e.g. "VOIDED"')
        with sandbox.lock:
            found = world.find_invoice(invoice_id)
            if found is None:
                return _bad_request(f"No invoice {invoice_id}", 404)
            org, invoice = found
            outcome = invoices.write_invoice(org, {"Status": status}, target_id=invoice["InvoiceID"])
            if not outcome.ok:
                return _bad_request("; ".join(outcome.errors))
            result = {"invoice": invoice_render.render_invoice(org, outcome.entity)}
        world.emit(org.id, outcome.events)
        return jsonify(result)

    @bp.post("/_sandbox/xero/invoices/<invoice_id>/edit")
    def edit_invoice(invoice_id: str):
        """A user's edit in Xero's invoice screen: any invoice fields (LineItems replace the lines),
        with the API's rules (no edits once paid or voided)."""
        element = {key: value for key, value in body().items() if key not in ("InvoiceID", "Type")}
        if not element:
            return _bad_request('send the fields to change, e.g. {"Reference": "..."}')
        with sandbox.lock:
            found = world.find_invoice(invoice_id)
            if found is None:
                return _bad_request(f"No invoice {invoice_id}", 404)
            org, invoice = found
            outcome = invoices.write_invoice(org, element, target_id=invoice["InvoiceID"], unitdp=4)
            if not outcome.ok:
                return _bad_request("; ".join(outcome.errors))
            result = {"invoice": invoice_render.render_invoice(org, outcome.entity)}
        world.emit(org.id, outcome.events)
        return jsonify(result)

    @bp.post("/_sandbox/xero/tokens/expire")
    def expire_tokens():
        with sandbox.lock:
            now = sandbox.clock.now()
            tokens = world.identity.access_tokens.values()
            for token in tokens:
                token.expires_at = min(token.expires_at, now)
            return jsonify({"expired": len(tokens)})

    @bp.post("/_sandbox/xero/settings")
    def change_settings():
        given = body()
        with sandbox.lock:
            if "refresh_grace_s" in given:
                try:
                    grace = float(given["refresh_grace_s"])
                    if grace < 0:
                        raise ValueError
                except (TypeError, ValueError):
                    return _bad_request('"refresh_grace_s" must be a number of seconds >= 0')
                world.identity.refresh_grace_s = grace
            return jsonify({"refresh_grace_s": world.identity.refresh_grace_s})

    @bp.get("/_sandbox/xero/organisations")
    def list_organisations():
        with sandbox.lock:
            return jsonify(
                [
                    {"tenant_id": o.id, "name": o.name, "base_currency": o.base_currency}
                    for o in world.organisations.values()
                ]
            )

    @bp.post("/_sandbox/xero/organisations")
    def add_organisation():
        given = body()
        name = given.get("name")
        currency = str(given.get("base_currency") or reference.DEFAULT_BASE_CURRENCY).upper()
        if not isinstance(name, str) or not name.strip():
            return _bad_request('"name" is required')
        if currency not in reference.CURRENCY_NAMES:
            return _bad_request(f'"base_currency" must be one of {sorted(reference.CURRENCY_NAMES)}')
        org = world.add_organisation(name.strip(), currency)
        return jsonify({"tenant_id": org.id, "name": org.name, "base_currency": org.base_currency})

    def bulk(key: str, write, summarise):
        """Create objects as a Xero user would: same validation, no auth, one lock for the whole batch."""
        given = body()
        elements = given.get(key)
        if not isinstance(elements, list):
            return _bad_request(f'send {{"{key}": [...], "tenant_id"?: ...}}')
        with sandbox.lock:
            tenant_id = str(given.get("tenant_id") or world.default_organisation().id).lower()
            org = world.organisations.get(tenant_id)
            if org is None:
                return _bad_request(f"No organisation {tenant_id}", 404)
            outcomes = [write(org, element) for element in elements]
            rows = []
            for outcome in outcomes:
                row = summarise(outcome.entity)
                row["StatusAttributeString"] = "OK" if outcome.ok else "ERROR"
                if not outcome.ok:
                    row["ValidationErrors"] = [{"Message": message} for message in outcome.errors]
                rows.append(row)
        world.emit(org.id, [event for outcome in outcomes for event in outcome.events])
        failed = sum(1 for outcome in outcomes if not outcome.ok)
        return jsonify({"tenant_id": org.id, "created": len(outcomes) - failed, "failed": failed, key: rows})

    @bp.post("/_sandbox/xero/contacts")
    def create_contacts():
        return bulk(
            "Contacts",
            lambda org, element: contacts.write_contact(org, element),
            lambda c: {"ContactID": c.get("ContactID"), "Name": c.get("Name"), "ContactNumber": c.get("ContactNumber")},
        )

    @bp.post("/_sandbox/xero/items")
    def create_items():
        return bulk(
            "Items",
            lambda org, element: items.write_item(org, element),
            lambda i: {"ItemID": i.get("ItemID"), "Code": i.get("Code")},
        )

    @bp.post("/_sandbox/xero/tax_rates")
    def create_tax_rates():
        """Tax rates as a Xero user adds them (Settings > Tax rates): a name and one component's rate;
        Xero gives user-made rates TaxTypes TAX001, TAX002, ... (the rate is the effective rate)."""
        return bulk(
            "TaxRates",
            add_tax_rate,
            lambda r: {"TaxType": r.get("TaxType"), "Name": r.get("Name"), "Rate": float(r.get("Rate") or 0)},
        )

    @bp.post("/_sandbox/xero/invoices")
    def create_invoices():
        return bulk(
            "Invoices",
            lambda org, element: invoices.write_invoice(org, element),
            lambda i: {
                "InvoiceID": i.get("InvoiceID"),
                "InvoiceNumber": i.get("InvoiceNumber"),
                "ContactID": i.get("ContactID"),
                "Status": i.get("Status"),
                "Total": float(i["Total"]) if i.get("Total") is not None else None,
            },
        )
