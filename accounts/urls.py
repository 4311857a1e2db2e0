from django.urls import path

from accounts.views import auth, security

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
]
