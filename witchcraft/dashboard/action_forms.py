"""The staff actions on a user (the 360° page and the quota list): which of them a staff member
may take (each needs the Django permission the admin asks for the same change) and the plan
form (the raise's form is billing's own, billing.forms.QuotaRaiseForm, shared with the admin)."""

from __future__ import annotations

from django import forms

from billing import selectors as billing_selectors

# action -> the permission it needs
PERMISSIONS = {
    "change_plan": "billing.change_usersubscription",
    "reset_quota": "billing.change_userquota",
    "raise_limit": "billing.change_userquota",
    "revoke_tokens": "accounts.change_accesstoken",
    "end_sessions": "accounts.change_user",
    "resend_verification": "accounts.change_user",
    "set_active": "accounts.change_user",
}


def allowed_actions(staff, user) -> dict[str, bool]:
    """action -> may ``staff`` take it on ``user`` (the buttons shown). Deactivating: never
    one's own account, nor a superuser's unless a superuser (the database refuses both too)."""
    may = {action: staff.has_perm(perm) for action, perm in PERMISSIONS.items()}
    may["set_active"] = (
        may["set_active"]
        and staff.pk != user.pk
        and (staff.is_superuser or not user.is_superuser)
        and user.deleted_at is None
    )
    may["resend_verification"] = may["resend_verification"] and user.email_verified_at is None
    may["any"] = any(may.values())
    return may


def _active_tiers() -> list[tuple[str, str]]:
    return [(t.slug, t.name) for t in billing_selectors.tiers_all() if t.is_active]


class ChangePlanForm(forms.Form):
    tier = forms.ChoiceField(label="New plan", choices=_active_tiers)

    def __init__(self, *args, current_tier_name: str | None = None, **kwargs):
        """``current_tier_name``: the plan the user is on, chosen at first."""
        super().__init__(*args, **kwargs)
        self.fields["tier"].choices = tiers = _active_tiers()  # read once
        for slug, name in tiers:
            if name == current_tier_name:
                self.initial.setdefault("tier", slug)
