from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.views.decorators.debug import sensitive_post_parameters

from accounts import audit, devices, passwords, service_credentials, services, staff, tokens
from accounts.forms import (
    AdminPasswordForm,
    ServiceCredentialIssueForm,
    UserChangeAdminForm,
    UserCreationAdminForm,
)
from accounts.models import (
    AccessToken,
    AuditLog,
    EmailVerificationToken,
    PasswordResetToken,
    ServiceCredential,
    User,
    UserProfile,
)
from witchcraft.platform import refusals
from witchcraft.platform.admin_mixins import ReadOnlyAdmin

# users is updatable by the runtime role column by column (accounts/sql/0002): the admin writes
# those with update_fields, the staff flags through set_user_staff (audited by the database).
USER_WRITABLE_FIELDS = ("full_name",)
STAFF_FLAGS = ("is_staff", "is_superuser")
USER_READ_ONLY_FIELDS = ("email", "is_active", "groups", "last_login", "date_joined")


def _changelist(model: str, user_id: int, field: str = "user") -> str:
    return f"{reverse(f'admin:{model}_changelist')}?{field}__id__exact={user_id}"


def user_links(user_id: int) -> list[tuple[str, str]]:
    """(label, url) of the user's related rows: quota, subscriptions, sessions, usage, audit."""
    return [
        ("Quota", _changelist("billing_userquota", user_id)),
        ("Subscriptions", _changelist("billing_usersubscription", user_id)),
        ("Payments", _changelist("billing_paymenthistory", user_id)),
        ("Alerts", _changelist("billing_usagealert", user_id)),
        ("Agent sessions", _changelist("agents_agentsession", user_id)),
        ("Usage requests", _changelist("usage_aiusagerequest", user_id)),
        ("Daily usage", _changelist("usage_aiusagedaily", user_id)),
        ("Tokens", _changelist("accounts_accesstoken", user_id)),
        ("Audit (about)", _changelist("accounts_auditlog", user_id)),
        ("Audit (by)", _changelist("accounts_auditlog", user_id, field="actor")),
        ("Dashboard", f"/dashboard/users/{user_id}/"),
    ]


def user_link(user) -> str:
    """The user's email, linked to their admin page."""
    if user is None:
        return "-"
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:accounts_user_change", args=[user.pk]), user.email
    )


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    ordering = ("-date_joined",)
    list_display = (
        "email",
        "full_name",
        "is_active",
        "is_staff",
        "date_joined",
        "last_login",
        "related_links",
    )
    list_filter = ("is_active", "is_staff", "is_superuser", "date_joined")
    search_fields = ("email", "full_name")
    date_hierarchy = "date_joined"
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Related", {"fields": ("related_links",)}),
        ("Profile", {"fields": ("full_name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "full_name", "usable_password", "password1", "password2"),
            },
        ),
    )
    filter_horizontal = ("groups", "user_permissions")
    change_password_form = AdminPasswordForm
    change_user_password_template = "admin/accounts/user/change_password.html"  # noqa: S105
    # The change page (templates/admin/accounts/user/change_form.html) has an "Impersonate"
    # button for the users the signed-in staff member may impersonate.

    def has_change_permission(self, request, obj=None):
        """A superuser's account is changed by superusers only (its change page is read-only
        to other staff, its password form refused): the database refuses it anyway
        (accounts/sql/0012)."""
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    @method_decorator(sensitive_post_parameters())
    def user_change_password(self, request, id, form_url=""):
        """Django's password form, saved through accounts.passwords.password_set (hashing,
        audit, reset links, sessions and tokens ended, as on the security page). A form that
        is not valid, or not to be saved, is answered by Django's own view."""
        user = self.get_object(request, unquote(id))
        if user is not None and not self.has_change_permission(request, user):
            raise PermissionDenied
        form = AdminPasswordForm(user, request.POST) if user and request.method == "POST" else None
        if form is None or not form.is_valid():
            return super().user_change_password(request, id, form_url)
        data = form.cleaned_data
        if not (data["set_usable_password"] or "unset-password" in request.POST):
            return super().user_change_password(request, id, form_url)  # "conflicting data"
        own = user.pk == request.user.pk
        try:
            user, ended = form.save(
                keep_session_key=request.session.session_key if own else None,
                user_agent=audit.request_user_agent(request),
                by_staff=not own,
            )
        except passwords.PasswordChangeError as refused:
            if refused.field is None:
                raise PermissionDenied(" ".join(refused.messages)) from None
            messages.error(request, " ".join(refused.messages))
            return HttpResponseRedirect(request.get_full_path())
        self.log_change(request, user, [{"changed": {"fields": ["password"]}}])
        if own:
            devices.session_renew(request, user)
        messages.success(
            request,
            f"Password changed. Ended: {ended.reset_links} reset link(s), {ended.sessions}"
            f" session(s), {ended.tokens} API token(s).",
        )
        return HttpResponseRedirect(reverse("admin:accounts_user_change", args=[user.pk]))

    def get_fieldsets(self, request, obj=None):
        """The add page: a superuser may also make the account staff (set_user_staff refuses
        anyone else; the fields are not there for other staff)."""
        if obj is None and request.user.is_superuser:
            return (*self.add_fieldsets, ("Permissions", {"fields": STAFF_FLAGS}))
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        """On the change page, what the runtime role cannot write is shown, not edited; the
        staff flags are editable by superusers only (set_user_staff refuses anyone else)."""
        if obj is None:
            return ()
        readonly = [*USER_READ_ONLY_FIELDS, "related_links"]
        if not request.user.is_superuser:
            readonly += STAFF_FLAGS
        return readonly

    @admin.display(description="Related")
    def related_links(self, obj):
        """Links to the user's rows in the other admin screens (no query: filtered lists)."""
        if obj is None or obj.pk is None:
            return "-"
        return format_html_join(
            " · ",
            '<a href="{}">{}</a>',
            ((url, label) for label, url in user_links(obj.pk)),
        )

    def save_model(self, request, obj, form, change):
        if not change:
            return self._add(request, obj)
        changed = set(form.changed_data)
        if fields := [name for name in USER_WRITABLE_FIELDS if name in changed]:
            obj.save(update_fields=fields)
        if changed & set(STAFF_FLAGS):
            try:
                staff.user_set_staff(
                    user_id=obj.pk, is_staff=obj.is_staff, is_superuser=obj.is_superuser
                )
            except staff.StaffFlagsRefused as refused:
                raise PermissionDenied(refused.message) from None
        return None

    def _add(self, request, obj) -> None:
        """ "Add user": the account is made the one way there is (accounts.services.user_create:
        profile, quota, free subscription, user_created with the staff member as actor), with
        the password the form hashed; the runtime role cannot insert into users itself."""
        try:
            user_id = services.user_create(
                email=obj.email,
                password_hash=obj.password,
                full_name=obj.full_name,
                is_staff=obj.is_staff,
                is_superuser=obj.is_superuser,
                actor=request.user,
            )
        except services.RegistrationError as refused:
            # The form checked the address (taken, invalid) already: what is left is the flags
            # refused, or an address taken meanwhile.
            raise PermissionDenied(refused.message) from None
        obj.pk = user_id
        obj.refresh_from_db()


@admin.register(UserProfile)
class UserProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "display_name", "company", "timezone", "locale")
    list_filter = ("locale",)
    search_fields = ("user__email", "display_name", "company")
    list_select_related = ("user",)
    ordering = ("user__email",)
    raw_id_fields = ("user",)


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "prefix",
        "user",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("revoked_at", "expires_at", "created_at", "last_used_at")
    search_fields = ("name", "prefix", "user__email")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    readonly_fields = ("token_hash", "prefix", "created_at", "last_used_at", "last_used_ip")
    raw_id_fields = ("user",)
    actions = ("revoke_selected",)

    def has_change_permission(self, request, obj=None):
        # Tokens change only through their SQL functions (revoke: the action); the runtime
        # role may not UPDATE access_tokens, so a saved form was a 500.
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke_selected(self, request, queryset):
        user_agent = audit.request_user_agent(request)
        revoked = sum(
            tokens.token_revoke(user_id=user_id, token_id=pk, user_agent=user_agent)
            for pk, user_id in queryset.filter(revoked_at__isnull=True).values_list("pk", "user_id")
        )
        self.message_user(request, f"{revoked} token(s) revoked.", messages.SUCCESS)


ISSUE_TEMPLATE = "admin/accounts/servicecredential/issue.html"


@admin.register(ServiceCredential)
class ServiceCredentialAdmin(admin.ModelAdmin):
    """Staff issue (the add page: the raw value is shown once, on its answer, and stored
    nowhere), list and revoke service credentials. Rows are never edited or deleted here: the
    SQL functions that issue and revoke are the only writers, and they audit."""

    list_display = (
        "name",
        "prefix",
        "scope_list",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    )
    list_filter = ("revoked_at", "expires_at", "created_at")
    search_fields = ("name", "prefix", "created_by__email")
    list_select_related = ("created_by", "revoked_by")
    ordering = ("-created_at",)
    exclude = ("token_hash",)
    actions = ("revoke_selected",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ServiceCredentialIssueForm(request.POST if request.method == "POST" else None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Issue a service credential",
        }
        if form.is_bound and form.is_valid():
            try:
                issued = service_credentials.service_credential_issue(
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    days=form.cleaned_data["days"],
                    user_agent=audit.request_user_agent(request),
                )
            except service_credentials.ServiceCredentialError as refused:
                refusals.form_add_refusal(form, refused)
            else:
                # Rendered, not redirected: the raw value must not wait in a session or a cookie.
                response = TemplateResponse(
                    request,
                    ISSUE_TEMPLATE,
                    {**context, "title": "Service credential issued", "issued": issued},
                )
                add_never_cache_headers(response)
                return response
        return TemplateResponse(request, ISSUE_TEMPLATE, {**context, "form": form})

    @admin.action(description="Revoke selected service credentials")
    def revoke_selected(self, request, queryset):
        user_agent = audit.request_user_agent(request)
        try:
            revoked = sum(
                service_credentials.service_credential_revoke(
                    credential_id=pk, user_agent=user_agent
                )
                for pk in queryset.filter(revoked_at__isnull=True).values_list("pk", flat=True)
            )
        except service_credentials.ServiceCredentialError as refused:
            self.message_user(request, refused.message, messages.ERROR)
            return
        self.message_user(request, f"{revoked} service credential(s) revoked.", messages.SUCCESS)


@admin.register(PasswordResetToken, EmailVerificationToken)
class OneTimeTokenAdmin(admin.ModelAdmin):
    list_display = ("user", "created_at", "expires_at", "used_at", "requested_ip")
    list_filter = ("used_at", "expires_at")
    search_fields = ("user__email", "requested_ip")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    readonly_fields = ("token_hash", "created_at")
    raw_id_fields = ("user",)


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    """Append-only: nothing can be added, changed or deleted here."""

    list_display = (
        "created_at",
        "event_type",
        "severity",
        "user",
        "actor",
        "ip",
        "target_type",
        "target_id",
    )
    list_filter = ("severity", "event_type", "target_type")
    search_fields = ("event_type", "user__email", "actor__email", "ip", "request_id", "target_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_select_related = ("user", "actor")
    show_full_result_count = False
