from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Invoice sync"

    def ready(self) -> None:
        # accounts verifies the application_token of every Bitrix24 event and dispatches by name;
        # the invoice events land in the sync inbox. accounts does not import sync (no cycle).
        from accounts.events import EVENT_HANDLERS
        from sync.services.inbox import BITRIX24_INVOICE_EVENTS, inbox_record_bitrix24_event

        for name in BITRIX24_INVOICE_EVENTS:
            EVENT_HANDLERS[name] = inbox_record_bitrix24_event

        # Every sync outcome written to the log is counted for operators (connector/metrics.py).
        from django.db.models.signals import post_save

        from connector.logcontext import sync_outcome_logged
        from connector.metrics import sync_log_counted

        post_save.connect(sync_log_counted, sender="sync.SyncLogEntry", dispatch_uid="metrics.sync_log")
        # ... and logged as one line with the invoice's ids (connector/logcontext.py).
        post_save.connect(sync_outcome_logged, sender="sync.SyncLogEntry", dispatch_uid="logs.sync_log")
