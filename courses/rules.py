"""Who may manage which course: decided here, and only here.

A user manages a course when they are a platform administrator
(:func:`accounts.rules.is_platform_admin`) or hold a role on the course's team
(a ``CourseRole`` row, admin or staff). That one rule has two forms:

- :data:`can_manage_course` (a ``rules`` predicate) for one course: the
  permission-checked fetch ``courses.selectors.course_for_team_member`` that
  every course page goes through, the REST API, and services that check again;
- :func:`courses_managed_by` (a queryset) for lists: menus, form choices and
  the admin; :func:`course_ids_managed_by_sql`, the same set as SQL text, for
  the statements written by hand (the enrollments the API shows).

Changing the course team and the course's settings is for course admins
(:data:`can_manage_course_team`, :data:`can_change_course_settings`), creating
courses for platform administrators."""

import rules
from django.db.models import QuerySet

from accounts.rules import is_platform_admin

from .models import Course, CourseRole


def _is_active_account(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


@rules.predicate
def is_course_team_member(user, course) -> bool:
    if not _is_active_account(user) or course is None:
        return False
    return CourseRole.objects.filter(user=user, course=course).exists()


@rules.predicate
def is_course_admin(user, course) -> bool:
    if not _is_active_account(user) or course is None:
        return False
    return CourseRole.objects.filter(user=user, course=course, role=CourseRole.Role.ADMIN).exists()


can_manage_course = is_platform_admin | is_course_team_member
can_manage_course_team = is_platform_admin | is_course_admin
# The course's own settings (window, key, cap, modes...): course admins; staff read them.
can_change_course_settings = is_platform_admin | is_course_admin


def courses_managed_by(*, user) -> QuerySet[Course]:
    """The courses ``user`` may manage, unordered: the set form of
    :data:`can_manage_course` (a course is in it exactly when the predicate
    holds). Every course for a platform administrator, the courses of their
    teams for anyone else, none for anonymous users and inactive accounts."""
    if is_platform_admin(user):
        return Course.objects.all()
    if not _is_active_account(user):
        return Course.objects.none()
    # A subquery rather than a join on the roles: no DISTINCT needed, so
    # callers may annotate, order or combine the result freely.
    return Course.objects.filter(pk__in=CourseRole.objects.filter(user=user).values("course_id"))


# The ids of a team member's courses (%s: the user's id), written once: see course_ids_managed_by_sql.
_TEAM_COURSE_IDS_SQL = f"SELECT course_id FROM {CourseRole._meta.db_table} WHERE user_id = %s"  # noqa: S608 (a table name)


def course_ids_managed_by_sql(*, user) -> tuple[str, tuple]:
    """The ids of :func:`courses_managed_by` as SQL text and its parameters, for
    statements written by hand: the same set (tests hold them equal) without
    building a queryset, which costs more than reading the ids. The text
    depends only on the kind of user (platform administrator, active account,
    anyone else), so callers may keep what they write around it."""
    if is_platform_admin(user):
        return f"SELECT id FROM {Course._meta.db_table}", ()  # noqa: S608 (a table name)
    if not _is_active_account(user):
        return "SELECT NULL WHERE FALSE", ()
    return _TEAM_COURSE_IDS_SQL, (user.pk,)


rules.add_perm("courses.manage_course", can_manage_course)
rules.add_perm("courses.manage_course_team", can_manage_course_team)
rules.add_perm("courses.change_course_settings", can_change_course_settings)
rules.add_perm("courses.create_course", is_platform_admin)
