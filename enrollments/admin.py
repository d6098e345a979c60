from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from courses.admin import CourseAdmin as CourseAdminBase
from courses.models import Course, CourseRole, Mode
from enrollment_site.lib.admin import BigTableAdmin, ReadOnlyAdmin

from . import reasons
from .models import (
    Action,
    Allowance,
    BatchJob,
    BulkEnrollJob,
    Enrollment,
    EnrollmentAudit,
    MembershipPreview,
    Notification,
    Outcome,
    RosterJob,
    Source,
    UndoJob,
)
from .services import enrollment_batch_update
from .services.team import course_team_member_add


def _run(modeladmin, request, queryset, action):
    # Admin changes go through the same service as the batch page, so they are audited.
    by_course = {}
    for enrollment in queryset.select_related("course", "user"):
        by_course.setdefault(enrollment.course, []).append(enrollment.user.username)
    changed = 0
    for course, usernames in by_course.items():
        result = enrollment_batch_update(
            course=course, identifiers=usernames, action=action, auto_enroll=False, email_students=False,
            actor=request.user, reason=reasons.DJANGO_ADMIN, source=Source.ADMIN,
        )
        changed += sum(1 for r in result.results if r.outcome in (Outcome.ENROLLED, Outcome.REACTIVATED, Outcome.UNENROLLED))
    modeladmin.message_user(
        request, ngettext("%(n)d enrollment changed.", "%(n)d enrollments changed.", changed) % {"n": changed}, messages.SUCCESS
    )


@admin.action(description=_("Enroll the selected (reactivate)"))
def enroll_selected(modeladmin, request, queryset):
    _run(modeladmin, request, queryset, Action.ENROLL)


@admin.action(description=_("Unenroll the selected (keeps their data)"))
def unenroll_selected(modeladmin, request, queryset):
    _run(modeladmin, request, queryset, Action.UNENROLL)


class ModeFilter(admin.SimpleListFilter):
    # Django's default filter for a field without choices lists its distinct
    # values, a read of every enrollment; the modes are known.
    title = _("mode")
    parameter_name = "mode"

    def lookups(self, request, model_admin):
        return Mode.choices

    def queryset(self, request, queryset):
        return queryset.filter(mode=self.value()) if self.value() else queryset


@admin.register(Enrollment)
class EnrollmentAdmin(BigTableAdmin):
    list_display = ("user", "course", "mode", "is_active", "source", "created")
    list_filter = ("is_active", ModeFilter, "source", "course__org", "created")
    search_fields = ("user__username", "user__email", "course__key")
    list_select_related = ("user", "course")
    readonly_fields = ("user", "course", "is_active", "source", "created", "updated")
    fields = ("user", "course", "mode", "is_active", "source", "created", "updated")
    actions = [enroll_selected, unenroll_selected]

    def has_add_permission(self, request):
        # New enrollments are made on the Membership page or the API, which audit them.
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Allowance)
class AllowanceAdmin(BigTableAdmin):
    list_display = ("email", "course", "auto_enroll", "created_by", "created", "used_at")
    list_filter = ("auto_enroll", "course__org", ("used_at", admin.EmptyFieldListFilter))
    search_fields = ("email", "course__key")
    list_select_related = ("course", "created_by")
    readonly_fields = ("course", "email", "created_by", "created", "used_at")

    def has_add_permission(self, request):
        return False


@admin.register(EnrollmentAudit)
class EnrollmentAuditAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("created", "identifier", "course", "state_before", "state_after", "mode_after", "cohort_after", "source", "actor", "reason")
    list_filter = ("source", "state_after", "course__org", "created")
    search_fields = ("identifier", "course__key", "actor__username", "reason")
    list_select_related = ("course", "actor")


@admin.register(Notification)
class NotificationAdmin(BigTableAdmin):
    list_display = ("created", "recipient", "kind", "status", "course", "sent_at", "attempts")
    list_filter = ("status", "kind", "created")
    search_fields = ("recipient", "subject", "course__key")
    list_select_related = ("course",)
    readonly_fields = [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(BatchJob)
class BatchJobAdmin(admin.ModelAdmin):
    list_display = ("created", "course", "requester", "action", "status", "done", "total", "finished")
    list_filter = ("status", "action", "created")
    search_fields = ("course__key", "requester__username")
    list_select_related = ("course", "requester")
    # The identifiers and the per-identifier results can run to 100,000 lines; the results page shows them. So can a read file's rows.
    exclude = ("identifiers", "results", "summary", "upload_rows")
    readonly_fields = ("public_id", "course", "requester", "action", "auto_enroll", "email_students", "reason", "source", "ran_in_request", "input_note", "status", "done", "total", "outcomes", "error", "results_file", "celery_task_id", "created", "started", "finished", "heartbeat_at")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("identifiers", "results", "upload_rows")

    @admin.display(description=_("Outcomes"))
    def outcomes(self, job) -> str:
        # The summary is stored by outcome key; people read the labels the results page uses.
        return "; ".join(f"{label}: {count}" for label, count in job.summary_lines) or "—"

    def has_add_permission(self, request):
        return False


@admin.register(BulkEnrollJob)
class BulkEnrollJobAdmin(admin.ModelAdmin):
    """Read-only: jobs are created by the bulk enroll API and run by workers."""

    list_display = ("created", "public_id", "requester", "status", "done", "total", "finished")
    list_filter = ("status", "created")
    search_fields = ("public_id", "requester__username")
    list_select_related = ("requester",)
    exclude = ("payload", "result")
    readonly_fields = ("public_id", "requester", "status", "done", "total", "error", "created", "started", "finished", "heartbeat_at")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RosterJob)
class RosterJobAdmin(admin.ModelAdmin):
    """Read-only: jobs are created by the learners table's actions and run by workers."""

    list_display = ("created", "course", "requester", "action", "status", "done", "total", "finished")
    list_filter = ("status", "action", "created")
    search_fields = ("public_id", "course__key", "requester__username")
    list_select_related = ("course", "requester")
    # The chosen enrollment ids can run to hundreds of thousands; the job's page shows the counts.
    exclude = ("enrollment_ids",)
    readonly_fields = (
        "public_id", "course", "requester", "action", "mode", "cohort", "cohort_name", "reason", "email_students", "operation_id",
        "status", "done", "total", "summary", "refused", "error", "celery_task_id", "created", "started", "finished", "heartbeat_at",
    )
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).defer("enrollment_ids")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UndoJob)
class UndoJobAdmin(admin.ModelAdmin):
    """Read-only: jobs are created by an undo's Confirm and run by workers."""

    list_display = ("created", "course", "requester", "operation_id", "status", "done", "total", "finished")
    list_filter = ("status", "created")
    search_fields = ("public_id", "operation_id", "undo_operation_id", "course__key", "requester__username")
    list_select_related = ("course", "requester")
    readonly_fields = (
        "public_id", "course", "requester", "operation_id", "undo_operation_id", "email_students", "status", "done", "total",
        "summary", "left_alone", "error", "created", "started", "finished", "heartbeat_at", "position", "takeovers",
    )
    exclude = ("claim",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# Course is courses' model and admin; making the creator the course's admin, enrolled
# as every team member is, needs enrollments, so the registration is extended here.
admin.site.unregister(Course)


@admin.register(Course)
class CourseAdmin(CourseAdminBase):
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            course_team_member_add(course=obj, user=request.user, role=CourseRole.Role.ADMIN, actor=request.user)


@admin.register(MembershipPreview)
class MembershipPreviewAdmin(admin.ModelAdmin):
    """Read-only: previews are made by the Membership page, confirmed there once and swept when abandoned."""

    list_display = ("created", "course", "requester", "action", "total", "status", "confirmed_at", "confirmed_by")
    list_filter = ("status", "action", "created")
    search_fields = ("public_id", "course__key", "requester__username")
    list_select_related = ("course", "requester", "confirmed_by")
    readonly_fields = (
        "public_id", "course", "requester", "action", "auto_enroll", "email_students", "reason", "input_note", "in_request", "status",
        "done", "total", "summary", "emails", "team_unenrolled", "over_cap", "fingerprint", "confirmed_at", "confirmed_by", "batch_job",
        "replaces", "error", "created", "started", "finished", "heartbeat_at", "position", "takeovers",
    )
    exclude = ("claim", "identifiers", "shown", "upload")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
