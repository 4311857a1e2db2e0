from django.urls import path

from accounts.views import auth, privacy, profile, security
from accounts.views import twofactor as two_factor

app_name = "accounts"

urlpatterns = [
    path("auth/register/", auth.register, name="register"),
    path("auth/login/", auth.login_view, name="login"),
    path("auth/logout/", auth.logout_view, name="logout"),
    path("auth/password-reset/", auth.password_reset_request, name="password_reset"),
    path(
        "auth/password-reset/<str:token>/",
        auth.password_reset_confirm,
        name="password_reset_confirm",
    ),
    path("auth/verify/resend/", auth.verification_resend, name="verification_resend"),
    path("auth/verify/<str:token>/", auth.verification_confirm, name="verify"),
    path("me/security/", security.security_page, name="security"),
    path("me/security/password/", security.password_change, name="password_change"),
    path("me/security/sessions/<str:ref>/revoke/", security.session_revoke, name="session_revoke"),
    path("me/tokens/", security.tokens_page, name="me_tokens"),
    path("me/tokens/create/", security.token_create, name="token_create"),
    path("me/tokens/<int:token_id>/revoke/", security.token_revoke, name="token_revoke"),
    path("me/profile/", profile.profile_page, name="me_profile"),
    path("me/delete/", privacy.delete_page, name="me_delete"),
    path("auth/login/2fa/", two_factor.login_2fa, name="login_2fa"),
    path("me/security/2fa/", two_factor.two_factor_setup, name="two_factor_setup"),
    path("me/security/2fa/disable/", two_factor.two_factor_disable, name="two_factor_disable"),
    path(
        "me/security/2fa/recovery-codes/",
        two_factor.two_factor_recovery_codes,
        name="two_factor_recovery_codes",
    ),
]
