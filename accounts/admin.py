from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from enrollment_site.lib.admin import BigTableAdmin

from .forms import AdminUserAddForm, AdminUserChangeForm
from .models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin, BigTableAdmin):
    # Usernames and emails follow the sign-up rules here too (no look-alike
    # usernames, one account per email key).
    form = AdminUserChangeForm
    add_form = AdminUserAddForm
    list_display = ("username", "email", "first_name", "last_name", "is_active", "is_staff", "date_joined")
    # "Email shared with an older account": accounts that already shared an
    # email key when keys were introduced (accounts migration 0006), to resolve.
    list_filter = ("is_active", "is_staff", "is_superuser", "email_key_clash", "date_joined")
    search_fields = ("username", "email", "first_name", "last_name")
    ordering = ("username",)
    # Shown here, changed on /organisation/users/<id>/ (or by import), whose
    # services also apply unit courses and rules. The app of organisation units
    # (a layer above) adds the person's company and department to this page.
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        (_("Organisation"), {"fields": ("manager", "language", "date_added")}),
        (_("Email"), {"fields": ("email_key_clash",)}),
        # Also chosen by the person on their account page.
        (_("Language and time zone"), {"fields": ("time_zone",)}),
    )
    readonly_fields = ("manager", "language", "date_added", "email_key_clash")
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "email", "password1", "password2")}),
    )
