from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse

from enrollment_site.lib.admin import ReadOnlyAdmin

from .models import Cohort, CohortMembership, Course, CourseRole, CourseSettingsChange
from .rules import courses_managed_by
from .services import course_role_grant, course_role_revoke

# Team roles change in the admin only through course_role_grant and
# course_role_revoke, so the last-admin rule and their lock order hold there
# too. A refusal (ValidationError) is raised inside the admin view's own
# transaction, which rolls back everything that request did (the course's
# fields, its log entry); the view then answers with the refusal as a message.


def _refused_as_message(request, exc: ValidationError, redirect_to: str) -> HttpResponseRedirect:
    for message in exc.messages:
        messages.error(request, message)
    return HttpResponseRedirect(redirect_to)


def _user(pk):
    return get_user_model().objects.get(pk=pk)


class CourseRoleInline(admin.TabularInline):
    model = CourseRole
    extra = 0
    autocomplete_fields = ["user"]


def _save_team_formset(request, formset) -> None:
    """Save the course's team inline through the services: new and changed roles
    first (admins first, so promoting someone and removing the old admin in one
    save works), removals last. Sets what ``formset.save()`` would, for the
    admin's change message."""
    course = formset.instance
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    changed = [f for f in formset.forms if f not in formset.deleted_forms and f.has_changed()]
    changed.sort(key=lambda f: f.cleaned_data.get("role") != CourseRole.Role.ADMIN)
    for form in changed:
        role = form.cleaned_data["role"]
        user = form.cleaned_data["user"]
        if form.instance.pk is None:
            formset.new_objects.append(course_role_grant(course=course, user=user, role=role, actor=request.user))
            continue
        if "user" in form.changed_data:
            # Another person on this row is the old one leaving and the new one joining.
            course_role_revoke(course=course, user=_user(form.initial["user"]), actor=request.user)
        formset.changed_objects.append(
            (course_role_grant(course=course, user=user, role=role, actor=request.user), form.changed_data)
        )
    for form in formset.deleted_forms:
        if form.instance.pk is not None:
            course_role_revoke(course=course, user=_user(form.initial["user"]), actor=request.user)
            formset.deleted_objects.append(form.instance)


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("key", "display_name", "org", "start", "enrollment_start", "enrollment_end", "self_enrollment", "invitation_only", "max_enrollments")
    list_filter = ("org", "self_enrollment", "invitation_only", "start")
    search_fields = ("key", "display_name", "org")
    readonly_fields = ("org", "created", "created_by")
    inlines = [CourseRoleInline]

    def get_queryset(self, request):
        return super().get_queryset(request) & courses_managed_by(user=request.user)

    def save_model(self, request, obj, form, change):
        # The creator also becomes the course's (enrolled) admin: enrollments'
        # admin extends this one with that, as enrolling is not courses' business.
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        if formset.model is CourseRole:
            _save_team_formset(request, formset)
        else:
            super().save_formset(request, form, formset, change)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:
            return _refused_as_message(request, exc, request.get_full_path())


@admin.register(CourseRole)
class CourseRoleAdmin(admin.ModelAdmin):
    list_display = ("course", "user", "role", "created")
    list_filter = ("role", "course__org")
    search_fields = ("course__key", "user__username", "user__email")
    autocomplete_fields = ["user", "course"]
    list_select_related = ("course", "user")

    def get_readonly_fields(self, request, obj=None):
        # Moving a role to another person or course is a removal plus a grant:
        # done as two steps, each through its service.
        return ("course", "user") if obj else ()

    def save_model(self, request, obj, form, change):
        saved = course_role_grant(course=obj.course, user=obj.user, role=obj.role, actor=request.user)
        obj.pk, obj.created = saved.pk, saved.created

    def delete_model(self, request, obj):
        course_role_revoke(course=obj.course, user=obj.user, actor=request.user)

    def delete_queryset(self, request, queryset):
        for course_role in queryset.select_related("course", "user").order_by("pk"):
            course_role_revoke(course=course_role.course, user=course_role.user, actor=request.user)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:
            return _refused_as_message(request, exc, request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as exc:
            return _refused_as_message(request, exc, reverse("admin:courses_courserole_change", args=[object_id]))

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            _, name, description = actions["delete_selected"]
            actions["delete_selected"] = (_delete_roles_or_none, name, description)
        return actions


def _delete_roles_or_none(modeladmin, request, queryset):
    # Django's own action (confirmation page, log entries), in one transaction:
    # if one of the roles may not go, none goes.
    try:
        with transaction.atomic():
            return delete_selected(modeladmin, request, queryset)
    except ValidationError as exc:
        return _refused_as_message(request, exc, request.get_full_path())


@admin.register(CourseSettingsChange)
class CourseSettingsChangeAdmin(ReadOnlyAdmin):
    """Read-only, like the audit trail: the history is written by the settings page's services."""

    list_display = ("created", "course", "kind", "actor", "summary")
    list_filter = ("kind", "created")
    search_fields = ("course__key", "actor__username", "summary")
    list_select_related = ("course", "actor")
    show_full_result_count = False


@admin.register(Cohort)
class CohortAdmin(admin.ModelAdmin):
    list_display = ("name", "course", "created")
    list_filter = ("course__org",)
    search_fields = ("name", "course__key")
    autocomplete_fields = ["course"]
    list_select_related = ("course",)


@admin.register(CohortMembership)
class CohortMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "cohort", "course", "created")
    list_filter = ("course__org",)
    search_fields = ("user__username", "user__email", "cohort__name", "course__key")
    autocomplete_fields = ["user", "cohort", "course"]
    list_select_related = ("user", "cohort", "course")
