from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Count

from enrollment_site.lib.identifiers import Kind, parse_identifiers
from enrollments.models import Source

from .models import Group, GroupMembership
from .services import group_add_members

User = get_user_model()


class GroupAdminForm(forms.ModelForm):
    add_members = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Usernames or emails of people to add, separated by commas or new lines. "
        "They are enrolled in the group's courses.",
    )

    class Meta:
        model = Group
        fields = ["name", "description", "leaders", "courses"]

    def clean_add_members(self):
        parsed = parse_identifiers(self.cleaned_data["add_members"])
        found, missing = [], []
        for ident in parsed:
            if ident.kind == Kind.EMAIL:
                user = User.objects.filter(email__iexact=ident.key, is_active=True).first()
            elif ident.kind == Kind.USERNAME:
                user = User.objects.filter(username__iexact=ident.key, is_active=True).first()
            else:
                user = None
            (found if user else missing).append(user or ident.text)
        if missing:
            raise forms.ValidationError(f"No active account for: {', '.join(missing)}")
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

    @admin.display(ordering="member_count", description="members")
    def member_count(self, obj):
        return obj.member_count

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        users = form.cleaned_data.get("add_members") or []
        if users:
            added = group_add_members(group=form.instance, users=users, actor=request.user, source=Source.ADMIN, reason="Django admin")
            self.message_user(request, f"{len(added)} member(s) added.")


@admin.register(GroupMembership)
class GroupMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "group", "joined", "source")
    list_filter = ("group", "source")
    search_fields = ("user__username", "user__email", "group__name")
    list_select_related = ("user", "group")
    readonly_fields = ("user", "group", "joined", "source")

    def has_add_permission(self, request):
        return False
