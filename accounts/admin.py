from django.contrib import admin

from accounts.models import FrameSession, Portal, XeroConnection

# Secrets (tokens, application_token) never appear in admin: they are excluded from every form and list.


@admin.register(Portal)
class PortalAdmin(admin.ModelAdmin):
    list_display = ("domain", "member_id", "status", "invoice_mode", "installed_at")
    list_filter = ("status", "invoice_mode")
    search_fields = ("domain", "member_id")
    exclude = ("application_token", "access_token", "refresh_token")
    readonly_fields = (
        "member_id",
        "client_endpoint",
        "server_endpoint",
        "scope",
        "installed_by_user_id",
        "token_expires_at",
        "token_generation",
        "installed_at",
        "uninstalled_at",
    )


@admin.register(XeroConnection)
class XeroConnectionAdmin(admin.ModelAdmin):
    list_display = ("portal", "tenant_name", "tenant_id", "status", "token_expires_at")
    list_filter = ("status",)
    search_fields = ("tenant_name", "tenant_id", "portal__domain")
    exclude = ("access_token", "refresh_token")
    readonly_fields = (
        "portal",
        "tenant_id",
        "connection_id",
        "auth_event_id",
        "xero_user_id",
        "scope",
        "token_expires_at",
        "token_generation",
        "connected_at",
    )


@admin.register(FrameSession)
class FrameSessionAdmin(admin.ModelAdmin):
    """Read-only: who signed in from the app frame, when, and whether as an admin."""

    list_display = ("portal", "name", "bitrix_user_id", "is_admin", "created_at", "last_used_at")
    list_filter = ("is_admin",)
    search_fields = ("name", "portal__domain")
    fields = ("portal", "name", "bitrix_user_id", "is_admin", "token_expires_at", "created_at", "last_used_at")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
