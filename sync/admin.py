"""Django admin for the operator: the stage map and settings are editable per portal; links, the
inbox, jobs and the log are for looking, with the API's own error text in view."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from sync.models import (
    ContactLink,
    InboxEvent,
    InvoiceLink,
    InvoiceOutcome,
    ItemLink,
    StageMapping,
    SyncJob,
    SyncLogEntry,
    SyncSettings,
    XeroStatusMapping,
)


@admin.register(StageMapping)
class StageMappingAdmin(admin.ModelAdmin):
    list_display = ("portal", "category_id", "sort", "name", "stage_id", "semantics", "xero_status")
    list_display_links = ("name",)
    list_editable = ("xero_status",)
    list_filter = ("portal", "semantics", "xero_status")
    search_fields = ("stage_id", "name", "portal__domain")
    # The stage itself comes from Bitrix24 (stage_map_apply_defaults); only the choice is the user's.
    readonly_fields = ("stage_id", "category_id", "name", "semantics", "sort", "updated_at")


def portal_stage_choices(portal_id: int | None) -> list:
    """The portal's real invoice stages (Setup's copy of crm.status.list) as select choices; all
    portals' stages grouped by portal when the row has no portal yet (the add form)."""
    rows = StageMapping.objects.select_related("portal").order_by("portal__domain", "category_id", "sort")
    if portal_id:
        rows = rows.filter(portal_id=portal_id)
    empty = [("", "— leave the stage alone —")]
    if portal_id:
        return empty + [(r.stage_id, f"{r.name} ({r.stage_id})") for r in rows]
    grouped: dict[str, list] = {}
    for r in rows:
        grouped.setdefault(r.portal.domain, []).append((r.stage_id, f"{r.name} ({r.stage_id})"))
    return empty + list(grouped.items())


class XeroStatusMappingForm(forms.ModelForm):
    class Meta:
        model = XeroStatusMapping
        fields = ("portal", "xero_status", "stage_id")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "stage_id" in self.fields:
            current = self.instance.stage_id if self.instance else ""
            choices = portal_stage_choices(self.instance.portal_id if self.instance else None)
            flat = set()
            for value, label in choices:
                flat |= {v for v, _ in label} if isinstance(label, list) else {value}
            if current and current not in flat:
                choices.append((current, f"{current} (not a stage of this portal: choose another)"))
            self.fields["stage_id"] = forms.ChoiceField(
                choices=choices, required=False, label="Bitrix24 stage", help_text=self.fields["stage_id"].help_text
            )


@admin.register(XeroStatusMapping)
class XeroStatusMappingAdmin(admin.ModelAdmin):
    form = XeroStatusMappingForm
    list_display = ("portal", "xero_status", "stage_id")

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, form=XeroStatusMappingForm, **kwargs)

    list_editable = ("stage_id",)
    list_filter = ("portal", "xero_status")
    search_fields = ("portal__domain", "stage_id")


@admin.register(SyncSettings)
class SyncSettingsAdmin(admin.ModelAdmin):
    list_display = ("portal", "setup_completed", "default_account_code", "default_currency", "record_payment_on_paid")
    list_filter = ("setup_completed", "record_payment_on_paid", "create_bitrix24_payment_on_paid")
    search_fields = ("portal__domain", "portal__member_id")
    fieldsets = (
        (None, {"fields": ("portal", "setup_completed")}),
        (
            "Invoices",
            {"fields": ("default_account_code", "default_tax_type", "tax_types", "default_currency", "line_amounts")},
        ),
        ("Payments", {"fields": ("record_payment_on_paid", "payment_account_code", "create_bitrix24_payment_on_paid")}),
        ("Sweeps", {"fields": ("bitrix24_updated_since", "xero_modified_since")}),
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the engine writes; editing them by hand would break its bookkeeping."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(InvoiceLink)
class InvoiceLinkAdmin(admin.ModelAdmin):
    list_display = (
        "portal",
        "bitrix24_entity_type",
        "bitrix24_id",
        "xero_invoice_number",
        "last_xero_status",
        "last_bitrix24_stage_id",
        "dirty",
        "last_error_permanent",
        "updated_at",
    )
    list_filter = ("portal", "last_xero_status", "dirty", "last_error_permanent")
    search_fields = ("bitrix24_id", "xero_invoice_number", "xero_invoice_id")
    # Read-only but deletable: deleting a link is the operator's way to let an invoice be re-created.
    readonly_fields = [f.name for f in InvoiceLink._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(InvoiceOutcome)
class InvoiceOutcomeAdmin(ReadOnlyAdmin):
    """Where each invoice stands (kept from the sync log); "failed" ones are dead letters a person
    retries from the job list or the app's Sync log."""

    list_display = ("portal", "bitrix24_entity_type", "bitrix24_id", "state", "attempts", "reason", "updated_at")
    list_filter = ("portal", "state")
    search_fields = ("bitrix24_id", "reason")


@admin.register(ContactLink)
class ContactLinkAdmin(ReadOnlyAdmin):
    list_display = ("portal", "bitrix24_kind", "bitrix24_id", "xero_name", "xero_contact_number", "xero_contact_id")
    list_filter = ("portal", "bitrix24_kind")
    search_fields = ("xero_name", "xero_contact_number", "bitrix24_id")


@admin.register(ItemLink)
class ItemLinkAdmin(ReadOnlyAdmin):
    list_display = ("portal", "bitrix24_product_id", "xero_item_code", "xero_item_id")
    list_filter = ("portal",)
    search_fields = ("xero_item_code", "bitrix24_product_id")


@admin.register(InboxEvent)
class InboxEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "portal", "source", "event_type", "status", "attempts", "processed_at")
    list_filter = ("source", "status", "event_type", "portal")
    search_fields = ("dedupe_key",)
    date_hierarchy = "received_at"


@admin.action(description="Retry the selected failed jobs now")
def retry_failed_jobs(modeladmin, request, queryset) -> None:
    """The operator's retry: the same service as the app's Retry button (jobs of any portal)."""
    from sync.services.jobs import job_retry

    retried = 0
    for job in queryset.filter(status=SyncJob.Status.FAILED).select_related("portal"):
        job_retry(job.pk, portal=job.portal)
        retried += 1
    skipped = queryset.count() - retried
    message = f"{retried} failed job(s) queued again."
    if skipped:
        message += f" {skipped} selected job(s) were not failed and were left alone."
    modeladmin.message_user(request, message, messages.SUCCESS if retried else messages.WARNING)


@admin.register(SyncJob)
class SyncJobAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "portal",
        "kind",
        "target",
        "trigger",
        "status",
        "attempts",
        "not_before",
        "last_error",
    )
    list_filter = ("status", "kind", "trigger", "portal")
    search_fields = ("target", "last_error")
    date_hierarchy = "created_at"
    actions = [retry_failed_jobs]


@admin.register(SyncLogEntry)
class SyncLogEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "portal",
        "direction",
        "trigger",
        "object_kind",
        "bitrix24_id",
        "invoice_number",
        "outcome",
        "message",
    )
    list_filter = ("portal", "outcome", "trigger", "direction", "object_kind")
    search_fields = ("bitrix24_id", "xero_id", "invoice_number", "message")
    date_hierarchy = "created_at"
