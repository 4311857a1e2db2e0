"""``/me/security/``: the signed-in user's security page."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts import selectors


@login_required
def security_page(request):
    return render(
        request,
        "accounts/security.html",
        {"events": selectors.security_events(user_id=request.user.pk, limit=20)},
    )
