"""``/me/delete/``: the user deletes their account (thin view). The data export (``/me/export/``)
spans domains and is in witchcraft/selfservice/views.py."""

from django.contrib.auth import logout
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts import audit, deletion
from accounts.forms import AccountDeleteForm
from witchcraft.platform import refusals, rls
from witchcraft.platform.me_pages import impersonating, self_service


def _delete_page(request, *, form=None, status: int = 200):
    user = request.user
    return render(
        request,
        "me/delete.html",
        {
            "form": form or AccountDeleteForm(),
            "staff": user.is_staff or user.is_superuser,
            "staff_message": deletion.STAFF_CANNOT_DELETE,
        },
        status=status,
    )


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@self_service
def delete_page(request):
    """What deleting the account does, and the form to do it (the current password). After the
    deletion the browser is signed out and sees that the account is gone."""
    if request.method != "POST":
        return _delete_page(request)
    form = AccountDeleteForm(request.POST)
    if not form.is_valid():
        return _delete_page(request, form=form, status=400)
    try:
        deletion.account_delete(
            user=request.user,
            password=form.cleaned_data["password"],
            impersonated=impersonating(request),
            ip=rls.client_ip(request),
            user_agent=audit.request_user_agent(request),
        )
    except deletion.DeletionRefused as refused:
        refusals.form_add_refusal(form, refused)
        return _delete_page(request, form=form, status=refusals.refusal_answer(refused).view_status)
    logout(request)
    request.me_nav = []  # signed out: no account pages to offer
    return render(request, "me/delete.html", {"deleted": True})
