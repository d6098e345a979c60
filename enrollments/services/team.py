"""Course team members are enrolled in their course.

A course's team (``courses.CourseRole``) counts in the course's enrollment
figures, so whoever joins a team is enrolled too. courses knows nothing of
enrollments: its ``course_role_grant`` only gives the role, and these services,
one layer up, give the role and enroll in one transaction. Every path that puts
someone on a team goes through here: the Membership tab's team form, creating a
course on the site or in the admin, and the demo seeder. Leaving a team
(``courses.services.course_role_revoke``) keeps the enrollment."""

from django.db import transaction

from accounts.selectors import identifier_for
from accounts.types import Actor
from courses.models import Course, CourseRole
from courses.services import course_create, course_role_grant

from .. import reasons
from ..models import Source
from ..periods import NO_PERIOD
from .batch import enrollment_batch_update


@transaction.atomic
def course_team_member_add(*, course: Course, user, role: str, actor: Actor) -> CourseRole:
    """Give ``user`` the ``role`` on ``course`` (``course_role_grant``: an unknown
    role or the last admin stepping down is a ValidationError and changes nothing)
    and enroll them, audited with source ``team`` and without an email, with no
    end whatever the course's default period (a team member must not expire from
    their own course). Someone already enrolled stays as they are; an old
    inactive enrollment is reactivated."""
    course_role = course_role_grant(course=course, user=user, role=role, actor=actor)
    enrollment_batch_update(
        course=course,
        identifiers=[identifier_for(user)],
        action="enroll",
        auto_enroll=True,
        email_students=False,
        actor=actor,
        reason=reasons.TEAM_MEMBER_ADDED,
        source=Source.TEAM,
        period=NO_PERIOD,
    )
    return course_role


@transaction.atomic
def course_create_with_admin(*, actor: Actor, **fields) -> Course:
    """Create a course (``courses.services.course_create``: nothing is saved on a
    ValidationError) whose creator ``actor`` becomes its admin, enrolled like
    every team member."""
    course = course_create(actor=actor, **fields)
    if actor is not None and actor.is_authenticated:
        course_team_member_add(course=course, user=actor, role=CourseRole.Role.ADMIN, actor=actor)
    return course
