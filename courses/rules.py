"""Per-course permissions, as ``rules`` predicates over the CourseRole table.

Every view, API endpoint, download and admin queryset asks these, so that staff
of course A can never act on course B."""

import rules

from .models import CourseRole


@rules.predicate
def is_platform_admin(user):
    return bool(user and user.is_authenticated and user.is_active and (user.is_staff or user.is_superuser))


@rules.predicate
def is_course_team_member(user, course):
    if not (user and user.is_authenticated and user.is_active) or course is None:
        return False
    return CourseRole.objects.filter(user=user, course=course).exists()


@rules.predicate
def is_course_admin(user, course):
    if not (user and user.is_authenticated and user.is_active) or course is None:
        return False
    return CourseRole.objects.filter(user=user, course=course, role=CourseRole.Role.ADMIN).exists()


can_manage_course = is_platform_admin | is_course_team_member
can_manage_course_team = is_platform_admin | is_course_admin

rules.add_perm("courses.manage_course", can_manage_course)
rules.add_perm("courses.manage_course_team", can_manage_course_team)
rules.add_perm("courses.create_course", is_platform_admin)
