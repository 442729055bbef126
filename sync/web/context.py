"""Template context for the app's pages: where the portal stands for syncing (sync.services.gate)."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

# The messages app.js shows, translated for the page ({name} placeholders are filled in by app.js).
JS_STRINGS = [
    gettext_noop("Your sign-in has ended. Reopen the app from Bitrix24."),
    gettext_noop("The server answered {status}. Try again."),
    gettext_noop("Invoice {number}: "),
    gettext_noop("failed"),
    gettext_noop("{done} of {total} done"),
    gettext_noop(", {failed} failed"),
    gettext_noop("Finished with 1 failure — see below and the Sync log."),
    gettext_noop("Finished with {failed} failures — see below and the Sync log."),
    gettext_noop("Finished."),
    gettext_noop("Copied: {value}"),
    gettext_noop("Send all {total} invoices to Xero?"),
    gettext_noop("Asking Xero for changes…"),
    gettext_noop("Sending…"),
    gettext_noop("Done."),
    gettext_noop("Queued; working on it…"),
    gettext_noop("Queued {count} invoices; working on them…"),
    # imports.js
    gettext_noop("Waiting to start…"),
    gettext_noop("Importing…"),
    gettext_noop("Done"),
    gettext_noop("Failed"),
    gettext_noop("Import contacts as companies"),
    gettext_noop("Import items as products"),
    gettext_noop("Import Xero items"),
    gettext_noop("Import Xero contacts"),
    gettext_noop("{processed} of {total} processed"),
    gettext_noop("Could not read the progress."),
    gettext_noop("{message} Retrying…"),
    gettext_noop("Starting…"),
    gettext_noop("The import could not start."),
    gettext_noop("The import could not start. Check your connection and try again."),
    # product.js
    gettext_noop("No matching Xero account."),
    gettext_noop("Could not load Xero accounts: {error}"),
    gettext_noop("Type a code or a name, e.g. 200 or Sales."),
    gettext_noop("Creating in Xero and Bitrix24…"),
    gettext_noop("Create product"),
]


# The labels of model choices the pages show (SyncLog outcome/direction/object kind, Trigger): the
# models keep plain English labels (no migration churn); templates translate the label they get
# (`{% translate entry.get_outcome_display %}`) and this list is what makemessages extracts.
CHOICE_LABELS = [
    gettext_noop("Created"),
    gettext_noop("Updated"),
    gettext_noop("Status / stage changed"),
    gettext_noop("Payment recorded"),
    gettext_noop("Skipped (unchanged)"),
    gettext_noop("Echo of our own change dropped"),
    gettext_noop("Ignored (not an invoice of ours)"),
    gettext_noop("Refused (rule)"),
    gettext_noop("Held: totals differ"),
    gettext_noop("Changed in Xero"),
    gettext_noop("Failed, will retry"),
    gettext_noop("Failed"),
    gettext_noop("Bitrix24 → Xero"),
    gettext_noop("Xero → Bitrix24"),
    gettext_noop("Import from Xero"),
    gettext_noop("Bitrix24 event"),
    gettext_noop("Xero webhook"),
    gettext_noop("User button"),
    gettext_noop("Scheduled sweep"),
    gettext_noop("Setup / import"),
    gettext_noop("Invoice"),
    gettext_noop("Contact"),
    gettext_noop("Item / product"),
    gettext_noop("Payment"),
    gettext_noop("Xero's rate (Xero uses its daily rate)"),
    gettext_noop("Bitrix24's rate (sent as the invoice's CurrencyRate)"),
    # Field labels of the preview (sync.services.preview.HEADER_LABELS) and of drift's differences
    # (sync.mappers.drift HEADER_FIELDS/TOTAL_FIELDS; per-line labels are composed and stay English).
    gettext_noop("Invoice number"),
    gettext_noop("Reference"),
    gettext_noop("Date"),
    gettext_noop("Due date"),
    gettext_noop("Currency"),
    gettext_noop("Amounts are"),
    gettext_noop("Subtotal"),
    gettext_noop("Tax"),
    gettext_noop("Total"),
]


def js_strings() -> dict[str, str]:
    return {text: _(text) for text in JS_STRINGS}


def sync_state(request: HttpRequest) -> dict:
    """`sync_gate` (SyncGate) and `waiting_for_setup` (invoices held until Setup is saved) for the
    signed-in portal's pages; nothing elsewhere (admin, install, webhooks)."""
    portal = getattr(request, "portal", None)
    if portal is None or getattr(request, "frame_user", None) is None:
        return {}
    strings = js_strings()
    from sync.models import SyncSettings
    from sync.services.gate import GateState, invoices_waiting_for_setup, sync_gate

    gate = sync_gate(portal)
    settings = SyncSettings.objects.filter(portal=portal).first() if gate.state == GateState.SETUP_PENDING else None
    return {
        "js_strings": strings,
        "setup_defaults": settings,
        "sync_gate": gate,
        "setup_pending": gate.state == GateState.SETUP_PENDING,
        "waiting_for_setup": invoices_waiting_for_setup(portal) if gate.state == GateState.SETUP_PENDING else 0,
    }
