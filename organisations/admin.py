from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import UserAdmin
from accounts.selectors import users_by_identifier
from enrollment_site.lib.identifiers import parse_identifiers
from enrollments.models import Source
from enrollments.reasons import DJANGO_ADMIN

from .models import (
    Assignment,
    EnrollmentOrigin,
    EnrollmentRule,
    Group,
    GroupMembership,
    OrgImport,
    OrgJob,
    OrgUnit,
    Placement,
    UnitMembership,
)
from .services import group_add_members, rule_apply
from .texts import count_text, job_summary_text

User = get_user_model()


class GroupAdminForm(forms.ModelForm):
    add_members = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=_("Add members"),
        help_text=_("Usernames or emails of people to add, separated by commas or new lines. They are enrolled in the group's courses."),
    )

    class Meta:
        model = Group
        fields = ["name", "description", "leaders", "courses"]

    def clean_add_members(self):
        resolved = users_by_identifier(parse_identifiers(self.cleaned_data["add_members"]))
        found = [user for _, user in resolved if user is not None]
        missing = [ident.text for ident, user in resolved if user is None]
        if missing:
            raise forms.ValidationError(gettext("No active account for: %(names)s") % {"names": ", ".join(missing)})
        return found


class GroupMembershipInline(admin.TabularInline):
    # Read-only: members join through group_add_members (the field above or a
    # code), which also enrolls them in the group's courses.
    model = GroupMembership
    extra = 0
    fields = ("user", "joined", "source")
    readonly_fields = fields
    can_delete = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    form = GroupAdminForm
    list_display = ("name", "member_count", "created")
    search_fields = ("name",)
    filter_horizontal = ("leaders", "courses")
    inlines = [GroupMembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(ordering="member_count", description=_("members"))
    def member_count(self, obj):
        return obj.member_count

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        users = form.cleaned_data.get("add_members") or []
        if users:
            added = group_add_members(group=form.instance, users=users, actor=request.user, source=Source.ADMIN, reason=DJANGO_ADMIN)
            self.message_user(request, count_text(len(added), ngettext("%(count)s member added.", "%(count)s members added.", len(added))))


@admin.register(GroupMembership)
class GroupMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "group", "joined", "source")
    list_filter = ("group", "source")
    search_fields = ("user__username", "user__email", "group__name")
    list_select_related = ("user", "group")
    readonly_fields = ("user", "group", "joined", "source")

    def has_add_permission(self, request):
        return False


# --- Where a person sits: their company and department on the user's page ------

class PlacementInline(admin.StackedInline):
    # Read-only, like the user's other organisation fields: a move goes through
    # /organisation/users/<id>/ (or an import), which also applies the unit's
    # courses and the rules.
    model = Placement
    fields = ("company", "department")
    verbose_name = verbose_name_plural = _("Company and department")
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# accounts sits below organisations, so it cannot show the placement itself:
# this app extends the accounts user admin with it.
admin.site.unregister(User)


@admin.register(User)
class PlacedUserAdmin(UserAdmin):
    inlines = [*UserAdmin.inlines, PlacementInline]


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    list_display = ("user", "company", "department")
    list_filter = ("company", "department")
    search_fields = ("user__username", "user__email", "company__name", "department__name")
    list_select_related = ("user", "company", "department")
    readonly_fields = ("user", "company", "department")

    def has_add_permission(self, request):
        return False


# --- Organisation units, memberships, assignments, rules, imports ----------------

class UnitMembershipInline(admin.TabularInline):
    model = UnitMembership
    extra = 0
    fields = ("user", "joined", "source")
    readonly_fields = ("joined", "source")
    raw_id_fields = ("user",)


class AssignmentInline(admin.TabularInline):
    model = Assignment
    fk_name = "unit"
    extra = 0
    fields = ("course", "qualification", "created", "created_by")
    readonly_fields = ("created", "created_by")
    # Links made here do not enroll anyone by themselves: the Assign tab on
    # /organisation/ previews and applies them.


@admin.register(OrgUnit)
class OrgUnitAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "created")
    list_filter = ("kind",)
    search_fields = ("name",)
    inlines = [UnitMembershipInline, AssignmentInline]


@admin.register(UnitMembership)
class UnitMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "unit", "joined", "source")
    list_filter = ("unit__kind", "source")
    search_fields = ("user__username", "user__email", "unit__name")
    list_select_related = ("user", "unit")
    raw_id_fields = ("user",)


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("__str__", "unit", "group", "course", "qualification", "created")
    list_filter = ("unit__kind",)
    search_fields = ("unit__name", "group__name", "course__key", "qualification__name")
    list_select_related = ("unit", "group", "course", "qualification")


@admin.register(EnrollmentOrigin)
class EnrollmentOriginAdmin(admin.ModelAdmin):
    list_display = ("user", "course", "origin", "created")
    search_fields = ("user__username", "user__email", "origin")
    list_select_related = ("user", "course")
    readonly_fields = ("user", "course", "origin", "operation_id", "created")

    def has_add_permission(self, request):
        return False


@admin.action(description=_("Apply the selected rules now (enroll people who match)"))
def apply_rules(modeladmin, request, queryset):
    done = {"enrolled": 0, "reactivated": 0, "unenrolled": 0}
    for rule in queryset:
        for key, value in rule_apply(rule=rule, actor=request.user).items():
            done[key] += value
    modeladmin.message_user(request, job_summary_text(done))


@admin.register(EnrollmentRule)
class EnrollmentRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "retroactive", "unenroll_unmatched", "created")
    list_filter = ("is_active", "retroactive", "unenroll_unmatched")
    search_fields = ("name",)
    filter_horizontal = ("courses",)
    raw_id_fields = ("manager",)
    actions = [apply_rules]


@admin.register(OrgImport)
class OrgImportAdmin(admin.ModelAdmin):
    list_display = ("filename", "requester", "course", "status", "created")
    list_filter = ("status",)
    search_fields = ("filename", "requester__username")
    exclude = ("rows",)
    readonly_fields = ("public_id", "requester", "course", "filename", "errors", "preview", "email_students", "status", "job", "created")

    def has_add_permission(self, request):
        return False


@admin.register(OrgJob)
class OrgJobAdmin(admin.ModelAdmin):
    list_display = ("kind", "status", "done", "total", "requester", "created")
    list_filter = ("kind", "status")
    readonly_fields = ("public_id", "kind", "requester", "payload", "status", "done", "total", "summary", "error", "created", "started", "finished")

    def has_add_permission(self, request):
        return False
