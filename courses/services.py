"""Operations that change courses and their teams."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext

from accounts.types import Actor

from .models import Cohort, CohortMembership, Course, CourseRole

User = get_user_model()


@transaction.atomic
def course_create(*, actor: Actor, **fields) -> Course:
    """Create a course from ``fields`` (validated first: nothing is saved on a
    ValidationError), recording ``actor`` as its creator. Gives nobody a role:
    the site's course creation is ``enrollments.services.team.course_create_with_admin``,
    which makes the creator an (enrolled) course admin."""
    course = Course(created_by=actor if actor and actor.is_authenticated else None, **fields)
    course.full_clean()
    course.save()
    return course


@transaction.atomic
def course_role_grant(*, course: Course, user, role: str, actor: Actor) -> CourseRole:
    """Give ``user`` the role on the course (changing an existing role); the last
    admin cannot step down to staff. Only the role: team members are also enrolled,
    which is ``enrollments.services.team.course_team_member_add`` (built on this)."""
    if role not in CourseRole.Role.values:
        raise ValidationError(gettext("Unknown role “%(role)s”.") % {"role": role})
    roles = _lock_team(course)
    existing = next((r for r in roles if r.user_id == user.pk), None)
    if existing and existing.role == CourseRole.Role.ADMIN and role != CourseRole.Role.ADMIN:
        _ensure_another_admin(roles, leaving=user)
    course_role, _ = CourseRole.objects.update_or_create(course=course, user=user, defaults={"role": role})
    return course_role


@transaction.atomic
def course_role_revoke(*, course: Course, user, actor: Actor) -> None:
    """Take ``user`` off the course team. The last admin cannot be removed
    (a ValidationError, nothing changed): decided on the team as locked, so two
    admins removing each other at once leave exactly one of them. Their
    enrollment stays, as it does for anyone leaving a team."""
    roles = _lock_team(course)
    existing = next((r for r in roles if r.user_id == user.pk), None)
    if existing is None:
        raise ValidationError(gettext("%(user)s is not on the course team.") % {"user": user})
    if existing.role == CourseRole.Role.ADMIN:
        _ensure_another_admin(roles, leaving=user)
    existing.delete()


def _lock_team(course: Course) -> list[CourseRole]:
    # Two admins removing each other at once used to deadlock: each locked its
    # own role row, then waited for the other's. Every team change now locks in
    # one fixed order, the course row first (the same lock self-enrollment takes
    # for the cap), then the course's role rows by id, so concurrent changes to
    # one team queue behind each other and each decides on what the one before
    # it left.
    Course.objects.select_for_update(no_key=True).filter(pk=course.pk).values_list("pk", flat=True).get()
    return list(CourseRole.objects.select_for_update().filter(course=course).order_by("pk"))


def _ensure_another_admin(roles: list[CourseRole], *, leaving) -> None:
    if not any(r.role == CourseRole.Role.ADMIN and r.user_id != leaving.pk for r in roles):
        raise ValidationError(gettext("A course needs at least one admin; add another admin first."))


@transaction.atomic
def cohort_assign(*, course: Course, cohort_name: str, users) -> Cohort:
    """Put ``users`` (users or user ids) into the course's cohort named
    ``cohort_name``, creating the cohort if it is missing.

    A learner is in at most one cohort per course, so people already in another
    cohort of the course move to this one. One upsert whatever the number of
    users; returns the cohort."""
    cohort_name = (cohort_name or "").strip()
    if not cohort_name:
        raise ValidationError(gettext("A cohort needs a name."))
    cohort, _ = Cohort.objects.get_or_create(course=course, name=cohort_name)
    # Sorted ids: two overlapping assignments lock the membership rows in the
    # same order and queue behind each other instead of deadlocking.
    user_ids = sorted({user if isinstance(user, int) else user.pk for user in users})
    if user_ids:
        CohortMembership.objects.bulk_create(
            [CohortMembership(cohort=cohort, course=course, user_id=user_id) for user_id in user_ids],
            update_conflicts=True,
            unique_fields=["user", "course"],
            update_fields=["cohort"],
        )
    return cohort
