"""`python manage.py sandbox_setup [--seed]`: install the app into the sandbox and connect Xero.

Needs SANDBOX_URL and our web server answering at PUBLIC_URL (the sandbox POSTs the installer and
ONAPPINSTALL to it). Running it again is harmless: the portal is updated in place and an active
Xero connection is kept.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.errors import Refused
from accounts.services.sandbox import sandbox_setup_run
from integrations.common.errors import ExternalAPIError
from sandbox.client import SandboxError


class Command(BaseCommand):
    help = "Install the app into the sandbox portal, connect the sandbox Xero organisation, optionally seed demo data."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--seed", action="store_true", help="create demo companies, contacts and invoices")

    def handle(self, *args, seed: bool = False, **options) -> None:
        try:
            report = sandbox_setup_run(seed=seed)
        except (Refused, ExternalAPIError, SandboxError) as exc:
            raise CommandError(str(getattr(exc, "message", exc))) from exc
        portal, connection = report.portal, report.connection
        self.stdout.write(
            f"Portal: {portal.domain} (member_id {portal.member_id}), {portal.get_invoice_mode_display()}"
        )
        verb = "kept the active connection to" if report.connection_kept else "connected"
        self.stdout.write(f"Xero: {verb} {connection.tenant_name} (tenant {connection.tenant_id})")
        self.stdout.write(f"Xero webhooks: {report.webhooks}")
        self.stdout.write(f"Stage map: {report.stage_map}")
        if seed:
            self.stdout.write(
                "Seeded: " + ("; ".join(report.seeded) if report.seeded else "nothing new (already seeded)")
            )
        self.stdout.write(self.style.SUCCESS("Sandbox ready."))
