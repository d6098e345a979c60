from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "is_active", "is_staff", "date_joined")
    list_filter = ("is_active", "is_staff", "is_superuser", "date_joined")
    search_fields = ("username", "email", "first_name", "last_name")
    ordering = ("username",)
    # Shown here, changed on /organisation/users/<id>/ (or by import), whose
    # services also apply unit courses and rules. The app of organisation units
    # (a layer above) adds the person's company and department to this page.
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("Organisation", {"fields": ("manager", "language", "date_added")}),
    )
    readonly_fields = ("manager", "language", "date_added")
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "email", "password1", "password2")}),
    )
