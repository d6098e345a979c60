"""Reads of courses, with the permission-checked fetches every view goes through.

Who may manage a course is decided in ``courses/rules.py``; the fetches here
only apply it (404 for an unknown key first, then 403)."""

from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext

from .models import Cohort, Course, CourseRole, CourseSettingsChange
from .rules import can_manage_course, can_manage_course_team


def course_for_team_member(request, course_key: str) -> Course:
    """The course with this key if the requesting user may manage it.

    Raises Http404 for an unknown key and PermissionDenied (403) for anyone
    outside the course team who is not a platform administrator."""
    course = get_object_or_404(Course, key=course_key)
    if not can_manage_course(request.user, course):
        raise PermissionDenied(gettext("You are not on this course's team."))
    return course


def course_for_team_admin(request, course_key: str) -> Course:
    """Like course_for_team_member, but only for course admins and platform admins."""
    course = get_object_or_404(Course, key=course_key)
    if not can_manage_course_team(request.user, course):
        raise PermissionDenied(gettext("Only course admins may change the course team."))
    return course


def course_catalog() -> QuerySet[Course]:
    return Course.objects.order_by("start", "key")


def course_team(*, course: Course) -> QuerySet[CourseRole]:
    return CourseRole.objects.filter(course=course).select_related("user").order_by("role", "user__username")


def cohorts_with_counts(*, course: Course) -> QuerySet[Cohort]:
    """The course's cohorts by name, each with ``member_count``. One grouped query."""
    return Cohort.objects.filter(course=course).annotate(member_count=Count("memberships")).order_by("name")


def cohort_of_course(*, course: Course, cohort_id: int) -> Cohort:
    """The course's cohort with this id; Http404 for another course's."""
    return get_object_or_404(Cohort.objects.select_related("course"), course=course, pk=cohort_id)


def course_settings_history(*, course: Course, limit: int = 20) -> QuerySet[CourseSettingsChange]:
    """The course's latest settings and cohort changes, newest first, with who made them."""
    return CourseSettingsChange.objects.filter(course=course).select_related("actor").order_by("-created", "-id")[:limit]
