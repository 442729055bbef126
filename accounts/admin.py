from django.contrib import admin

from accounts.models import Portal, XeroConnection


@admin.register(Portal)
class PortalAdmin(admin.ModelAdmin):
    list_display = ("domain", "member_id", "status", "invoice_mode", "installed_at")
    list_filter = ("status", "invoice_mode")
    search_fields = ("domain", "member_id")
    # Secrets never appear in admin forms.
    exclude = ("application_token", "access_token", "refresh_token")
    readonly_fields = ("member_id", "token_expires_at", "token_generation", "installed_at", "uninstalled_at")


@admin.register(XeroConnection)
class XeroConnectionAdmin(admin.ModelAdmin):
    list_display = ("portal", "tenant_name", "tenant_id", "status", "token_expires_at")
    list_filter = ("status",)
    exclude = ("access_token", "refresh_token")
    readonly_fields = ("token_expires_at", "token_generation", "connected_at")
