from django.contrib import admin

from .models import Cohort, CohortMembership, Course, CourseRole
from .rules import courses_managed_by


class CourseRoleInline(admin.TabularInline):
    model = CourseRole
    extra = 0
    autocomplete_fields = ["user"]


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


@admin.register(CourseRole)
class CourseRoleAdmin(admin.ModelAdmin):
    list_display = ("course", "user", "role", "created")
    list_filter = ("role", "course__org")
    search_fields = ("course__key", "user__username", "user__email")
    autocomplete_fields = ["user", "course"]
    list_select_related = ("course", "user")


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
