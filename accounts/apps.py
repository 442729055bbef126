from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Portals and connections"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from accounts.models import Portal, XeroConnection
        from accounts.services.event_senders import event_sender_forget, xero_tenant_forget

        def forget(sender, instance: Portal, **kwargs) -> None:
            # What the event check keeps of a portal goes when this process changes the portal.
            event_sender_forget(instance.member_id)

        post_save.connect(forget, sender=Portal, weak=False, dispatch_uid="accounts.event_senders.save")
        post_delete.connect(forget, sender=Portal, weak=False, dispatch_uid="accounts.event_senders.delete")

        def forget_tenant(sender, instance: XeroConnection, **kwargs) -> None:
            xero_tenant_forget(instance.tenant_id)

        post_save.connect(forget_tenant, sender=XeroConnection, weak=False, dispatch_uid="accounts.tenants.save")
        post_delete.connect(forget_tenant, sender=XeroConnection, weak=False, dispatch_uid="accounts.tenants.delete")
