"""Tenancy and credentials: one Portal per Bitrix24 installation, one XeroConnection per portal.

Tokens are encrypted at rest (connector.crypto.EncryptedTextField). `token_generation` is the
compare-and-set guard of the single-flight refresh: a refresh saves its new pair only with
`WHERE token_generation = <the generation it read>`. The API clients write these rows only through
`token_store()` (accounts/token_store.py), which does each write that way.
"""

from __future__ import annotations

from typing import ClassVar

from django.db import models

from accounts.token_store import ModelTokenStore
from connector.crypto import EncryptedTextField
from integrations.bitrix24.entity_types import OLD_INVOICE, SMART_INVOICE


class Portal(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        NEEDS_REAUTH = "needs_reauth", "Needs re-authorisation"
        UNINSTALLED = "uninstalled", "Uninstalled"

    class InvoiceMode(models.TextChoices):
        SMART = "smart", "New invoices (entity type 31)"
        CLASSIC = "classic", "Old invoices (crm.invoice.*)"
        BOTH = "both", "Old and new invoices"

    # For integrations.common.tokens (TokenHolder): whose grant this is, and what its statuses mean.
    token_system: ClassVar[str] = "bitrix24"
    token_status_active: ClassVar[str] = Status.ACTIVE
    token_status_lost: ClassVar[str] = Status.NEEDS_REAUTH

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
    # Offline invoice events are bound (the plan has `rest_offline_extended`); sync drains the queue.
    offline_events = models.BooleanField(default=False)
    # The offline-event batch reserved (event.offline.get clear=0) and not yet cleared: a drain that
    # died between get and clear left it hidden from other gets, so the next drain re-reads it first.
    offline_process_id = models.CharField(max_length=64, blank=True)
    installed_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    uninstalled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return f"{self.domain} ({self.member_id})"

    @property
    def invoice_entity_types(self) -> tuple[int, ...]:
        """The Bitrix24 entity types of the portal's invoices: 31 (new, smart) and/or 5 (old)."""
        return {self.InvoiceMode.SMART: (SMART_INVOICE,), self.InvoiceMode.CLASSIC: (OLD_INVOICE,)}.get(
            self.invoice_mode, (SMART_INVOICE, OLD_INVOICE)
        )

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def token_store(self) -> ModelTokenStore[Portal]:
        """How the Bitrix24 client and the refresh persist this portal's tokens (TokenHolder)."""
        return ModelTokenStore(self)


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

    # For integrations.common.tokens (TokenHolder): whose grant this is, and what its statuses mean.
    token_system: ClassVar[str] = "xero"
    token_status_active: ClassVar[str] = Status.ACTIVE
    token_status_lost: ClassVar[str] = Status.NEEDS_RECONNECT

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

    def token_store(self) -> ModelTokenStore[XeroConnection]:
        """How the Xero client and the refresh persist this connection's tokens (TokenHolder)."""
        return ModelTokenStore(self)


class FrameSession(models.Model):
    """A Bitrix24 user signed in from the app frame, for one portal only.

    The app runs in a cross-site iframe where third-party cookies are unreliable, so the browser
    carries a signed, short-lived token that names this row (see accounts.auth). The user's own
    Bitrix24 tokens are kept (encrypted) so later pages call Bitrix24 as that user and Bitrix24's
    permissions decide what they see.
    """

    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="frame_sessions")
    bitrix_user_id = models.PositiveIntegerField()
    name = models.CharField(max_length=255, blank=True)
    is_admin = models.BooleanField(default=False)
    access_token = EncryptedTextField(blank=True)
    refresh_token = EncryptedTextField(blank=True)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    # What Bitrix24 said when the frame opened: LANG of the frame POST, the user's TIME_ZONE
    # (user.current; "" when the user has none). The pages speak and show times accordingly.
    lang = models.CharField(max_length=10, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    # The invoice list's page, size, dates and sort as last shown, restored when the list is opened
    # again without any (from the menu, or back from another page).
    list_state = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["portal", "bitrix_user_id"])]

    def __str__(self) -> str:
        return f"{self.name or self.bitrix_user_id} on {self.portal.domain}"


class XeroOAuthState(models.Model):
    """One Xero consent in progress: the `state` nonce (single use, short-lived) and, when Xero
    gave access to several organisations, the token set waiting for the user's choice."""

    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="xero_oauth_states")
    nonce = models.CharField(max_length=64, unique=True)
    started_by_user_id = models.PositiveIntegerField(null=True, blank=True)
    # Who started it: the frame sign-in (portal + Bitrix24 user), and the browser, through the
    # SHA-256 of a secret kept in that browser's cookie. A consent link sent to someone else
    # carries the state but not the cookie, so its callback is refused.
    frame_session = models.ForeignKey(
        FrameSession, null=True, blank=True, on_delete=models.CASCADE, related_name="xero_oauth_states"
    )
    browser_key_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when the code was exchanged; a state is never exchanged twice.
    used_at = models.DateTimeField(null=True, blank=True)
    # Set when the organisation was chosen (several-organisations case); then the pending tokens are wiped.
    chosen_at = models.DateTimeField(null=True, blank=True)
    pending_access_token = EncryptedTextField(blank=True)
    pending_refresh_token = EncryptedTextField(blank=True)
    pending_expires_at = models.DateTimeField(null=True, blank=True)
    pending_scope = models.CharField(max_length=500, blank=True)
    pending_xero_user_id = models.CharField(max_length=64, blank=True)
    pending_auth_event_id = models.CharField(max_length=64, blank=True)
    pending_connections = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"Xero consent for {self.portal.domain} at {self.created_at:%Y-%m-%d %H:%M}"
