"""Tenancy and credentials: one Portal per Bitrix24 installation, one XeroConnection per portal.

Tokens are encrypted at rest (connector.crypto.EncryptedTextField). `token_generation` is the
compare-and-set guard of the single-flight refresh: a refresh saves its new pair only with
`WHERE token_generation = <the generation it read>`.
"""

from __future__ import annotations

from django.db import models

from connector.crypto import EncryptedTextField


class Portal(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        NEEDS_REAUTH = "needs_reauth", "Needs re-authorisation"
        UNINSTALLED = "uninstalled", "Uninstalled"

    class InvoiceMode(models.TextChoices):
        SMART = "smart", "New invoices (entity type 31)"
        CLASSIC = "classic", "Old invoices (crm.invoice.*)"

    # member_id never changes; the domain can (Bitrix24 answers 302 to the new one).
    member_id = models.CharField(max_length=64, unique=True)
    domain = models.CharField(max_length=255)
    client_endpoint = models.URLField(max_length=500)
    server_endpoint = models.URLField(max_length=500, blank=True)
    application_token = EncryptedTextField(blank=True)
    access_token = EncryptedTextField(blank=True)
    refresh_token = EncryptedTextField(blank=True)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    token_generation = models.PositiveIntegerField(default=0)
    scope = models.CharField(max_length=500, blank=True)
    installed_by_user_id = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.TextField(blank=True)
    invoice_mode = models.CharField(max_length=10, choices=InvoiceMode.choices, default=InvoiceMode.SMART)
    installed_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    uninstalled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return f"{self.domain} ({self.member_id})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class XeroConnection(models.Model):
    """The Xero organisation a portal syncs with, and the token set that reaches it.

    A Xero token set belongs to one Xero user + this app and may reach several tenants; the
    connection stores the one chosen for the portal. Any Xero login may connect (as the original
    app allows).
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Connected"
        NEEDS_RECONNECT = "needs_reconnect", "Needs reconnection"
        DISCONNECTED = "disconnected", "Disconnected"

    portal = models.OneToOneField(Portal, on_delete=models.CASCADE, related_name="xero_connection")
    tenant_id = models.CharField(max_length=64, blank=True)
    tenant_name = models.CharField(max_length=255, blank=True)
    connection_id = models.CharField(max_length=64, blank=True)
    auth_event_id = models.CharField(max_length=64, blank=True)
    xero_user_id = models.CharField(max_length=64, blank=True)
    access_token = EncryptedTextField(blank=True)
    refresh_token = EncryptedTextField(blank=True)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    token_generation = models.PositiveIntegerField(default=0)
    scope = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.TextField(blank=True)
    connected_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.tenant_name or self.tenant_id} for {self.portal.domain}"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE and bool(self.tenant_id)
