"""Reads of courses, with the permission-checked fetches every view goes through.

Who may manage a course is decided in ``courses/rules.py``; the fetches here
only apply it (404 for an unknown key first, then 403)."""

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from .models import Course, CourseRole
from .rules import can_manage_course, can_manage_course_team


def course_for_team_member(request, course_key: str) -> Course:
    """The course with this key if the requesting user may manage it.

    Raises Http404 for an unknown key and PermissionDenied (403) for anyone
    outside the course team who is not a platform administrator."""
    course = get_object_or_404(Course, key=course_key)
    if not can_manage_course(request.user, course):
        raise PermissionDenied("You are not on this course's team.")
    return course


def course_for_team_admin(request, course_key: str) -> Course:
    """Like course_for_team_member, but only for course admins and platform admins."""
    course = get_object_or_404(Course, key=course_key)
    if not can_manage_course_team(request.user, course):
        raise PermissionDenied("Only course admins may change the course team.")
    return course


def course_catalog() -> QuerySet[Course]:
    return Course.objects.order_by("start", "key")


def course_team(*, course: Course) -> QuerySet[CourseRole]:
    return CourseRole.objects.filter(course=course).select_related("user").order_by("role", "user__username")
