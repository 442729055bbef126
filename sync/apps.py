from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Invoice sync"

    def ready(self) -> None:
        # accounts verifies the application_token of every Bitrix24 event and dispatches by name;
        # the invoice events land in the sync inbox. accounts does not import sync (no cycle).
        from accounts.events import EVENT_HANDLERS
        from sync.services.inbox import BITRIX24_INVOICE_EVENTS
        from sync.services.inbox_record import inbox_record_bitrix24_event

        for name in BITRIX24_INVOICE_EVENTS:
            EVENT_HANDLERS[name] = inbox_record_bitrix24_event

        # ... and answers the few questions an account flow asks of the engine (accounts/hooks.py).
        from accounts import hooks
        from sync.models import InvoiceLink
        from sync.services.gate import setup_completed
        from sync.services.stages import stage_map_refresh
        from sync.web.placements import placement_invoice_ids, placement_landing

        hooks.sync.setup_needed = lambda portal: not setup_completed(portal)
        hooks.sync.placement_invoice_ids = placement_invoice_ids
        hooks.sync.placement_landing = placement_landing
        hooks.sync.stage_map_refresh = stage_map_refresh
        hooks.sync.linked_invoices = lambda portal: InvoiceLink.objects.filter(portal=portal).count()

        # Every sync outcome written to the log is counted for operators (connector/metrics.py).
        from django.db.models.signals import post_save

        from connector import i18n
        from connector.logcontext import sync_outcome_logged
        from connector.metrics import STATE_SOURCES, sync_log_counted
        from sync.models import SyncSettings

        # The page's time zone falls back to the portal's, which Setup stores (connector/i18n.py).
        i18n.portal_zone_name = lambda portal: (
            SyncSettings.objects.filter(portal=portal).values_list("time_zone", flat=True).first() or ""
        )
        from sync.metrics_state import state_gauges

        if state_gauges not in STATE_SOURCES:
            STATE_SOURCES.append(state_gauges)

        post_save.connect(sync_log_counted, sender="sync.SyncLogEntry", dispatch_uid="metrics.sync_log")
        # ... and logged as one line with the invoice's ids (connector/logcontext.py).
        post_save.connect(sync_outcome_logged, sender="sync.SyncLogEntry", dispatch_uid="logs.sync_log")
