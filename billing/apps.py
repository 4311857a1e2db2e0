from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


def _forget_public_tiers(**kwargs) -> None:
    from billing.selectors import public_tiers_snapshot

    public_tiers_snapshot.forget()


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        from billing.models import SubscriptionTier

        # The cached public plans (billing.selectors.public_tiers) are forgotten when staff
        # change a plan.
        for signal in (post_save, post_delete):
            signal.connect(
                _forget_public_tiers, sender=SubscriptionTier, dispatch_uid="public-tiers"
            )
