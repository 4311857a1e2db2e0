from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied

from accounts import staff
from accounts.forms import UserChangeAdminForm, UserCreationAdminForm
from accounts.models import (
    AccessToken,
    AuditLog,
    EmailVerificationToken,
    PasswordResetToken,
    User,
    UserProfile,
)
from witchcraft.admin_mixins import ReadOnlyAdmin

# users is updatable by the runtime role column by column (accounts/sql/0002): the admin writes
# those with update_fields, the staff flags through set_user_staff (audited by the database).
USER_WRITABLE_FIELDS = ("full_name",)
STAFF_FLAGS = ("is_staff", "is_superuser")
USER_READ_ONLY_FIELDS = ("email", "is_active", "groups", "last_login", "date_joined")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    ordering = ("-date_joined",)
    list_display = ("email", "full_name", "is_active", "is_staff", "date_joined", "last_login")
    list_filter = ("is_active", "is_staff", "is_superuser")
    search_fields = ("email", "full_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
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
    # The change page (templates/admin/accounts/user/change_form.html) has an "Impersonate"
    # button for the users the signed-in staff member may impersonate.

    def get_readonly_fields(self, request, obj=None):
        """On the change page, what the runtime role cannot write is shown, not edited; the
        staff flags are editable by superusers only (set_user_staff refuses anyone else)."""
        if obj is None:
            return ()
        readonly = [*USER_READ_ONLY_FIELDS]
        if not request.user.is_superuser:
            readonly += STAFF_FLAGS
        return readonly

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
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


@admin.register(UserProfile)
class UserProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "display_name", "company", "timezone", "locale")
    search_fields = ("user__email", "display_name", "company")
    list_select_related = ("user",)
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
    list_filter = ("revoked_at", "expires_at")
    search_fields = ("name", "prefix", "user__email")
    list_select_related = ("user",)
    readonly_fields = ("token_hash", "prefix", "created_at", "last_used_at", "last_used_ip")
    raw_id_fields = ("user",)


@admin.register(PasswordResetToken, EmailVerificationToken)
class OneTimeTokenAdmin(admin.ModelAdmin):
    list_display = ("user", "created_at", "expires_at", "used_at", "requested_ip")
    search_fields = ("user__email",)
    list_select_related = ("user",)
    readonly_fields = ("token_hash", "created_at")
    raw_id_fields = ("user",)


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    """Append-only: nothing can be added, changed or deleted here."""

    list_display = ("created_at", "event_type", "severity", "user", "actor", "ip")
    list_filter = ("severity", "event_type")
    search_fields = ("event_type", "user__email", "ip", "request_id")
    date_hierarchy = "created_at"
    list_select_related = ("user", "actor")
