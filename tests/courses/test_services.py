"""Course services: creation, and the course team with its last-admin rule."""

import pytest
from django.core.exceptions import ValidationError

from courses.models import Course, CourseRole
from courses.services import course_create, course_team_add, course_team_remove, user_by_username_or_email
from enrollments.models import Enrollment, EnrollmentAudit, Source

from ..factories import EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def _roles(course) -> dict[str, str]:
    return dict(CourseRole.objects.filter(course=course).values_list("user__username", "role"))


def _is_enrolled(user, course) -> bool:
    return Enrollment.objects.filter(user=user, course=course, is_active=True).exists()


def test_course_create_makes_the_creator_an_enrolled_admin(platform_admin):
    course = course_create(actor=platform_admin, key="course-v1:Acme+NEW+2026", display_name="New course", modes="verified,audit")

    assert course.pk is not None
    assert course.org == "Acme"
    assert course.created_by == platform_admin
    assert _roles(course) == {"platformadmin": "admin"}
    enrollment = Enrollment.objects.get(user=platform_admin, course=course)
    assert enrollment.is_active
    assert enrollment.mode == "verified"  # the course's default mode


def test_course_create_validates_and_saves_nothing_on_error(platform_admin):
    with pytest.raises(ValidationError) as excinfo:
        course_create(actor=platform_admin, key="not-a-key", display_name="Broken")
    assert "key" in excinfo.value.message_dict
    assert not Course.objects.exists()
    assert not CourseRole.objects.exists()


def test_user_by_username_or_email():
    user = UserFactory(username="Mixed", email="Mixed.Case@Example.com")
    assert user_by_username_or_email("Mixed") == user
    assert user_by_username_or_email("  mixed.case@example.COM ") == user
    assert user_by_username_or_email("MIXED.CASE@EXAMPLE.COM") == user
    assert user_by_username_or_email("mixed") is None  # usernames match exactly
    assert user_by_username_or_email("nobody@example.com") is None
    assert user_by_username_or_email("") is None


def test_team_add_gives_the_role_and_enrolls(course, course_admin):
    newcomer = UserFactory(username="newcomer")

    role = course_team_add(course=course, user=newcomer, role="staff", actor=course_admin)

    assert role.role == "staff"
    assert _roles(course)["newcomer"] == "staff"
    assert _is_enrolled(newcomer, course)
    audit = EnrollmentAudit.objects.filter(course=course).latest("pk")
    assert audit.source == Source.TEAM


def test_team_add_reactivates_an_old_enrollment(course, course_admin):
    member = UserFactory(username="returning")
    old = EnrollmentFactory(user=member, course=course, is_active=False, mode="verified")

    course_team_add(course=course, user=member, role="staff", actor=course_admin)

    old.refresh_from_db()
    assert old.is_active
    assert Enrollment.objects.filter(user=member, course=course).count() == 1


def test_team_add_changes_an_existing_role(course, course_admin, course_staff):
    course_team_add(course=course, user=course_staff, role="admin", actor=course_admin)
    assert _roles(course) == {"courseadmin": "admin", "coursestaff": "admin"}
    # With two admins, one may step down to staff.
    course_team_add(course=course, user=course_admin, role="staff", actor=course_staff)
    assert _roles(course) == {"courseadmin": "staff", "coursestaff": "admin"}
    assert CourseRole.objects.filter(course=course).count() == 2


def test_team_add_rejects_an_unknown_role(course, course_admin):
    with pytest.raises(ValidationError):
        course_team_add(course=course, user=UserFactory(), role="owner", actor=course_admin)
    assert _roles(course) == {"courseadmin": "admin"}


def test_last_admin_cannot_be_demoted(course, course_admin, course_staff):
    with pytest.raises(ValidationError) as excinfo:
        course_team_add(course=course, user=course_admin, role="staff", actor=course_admin)
    assert "at least one admin" in " ".join(excinfo.value.messages)
    assert _roles(course) == {"courseadmin": "admin", "coursestaff": "staff"}


def test_last_admin_cannot_be_removed(course, course_admin, course_staff):
    with pytest.raises(ValidationError) as excinfo:
        course_team_remove(course=course, user=course_admin, actor=course_admin)
    assert "at least one admin" in " ".join(excinfo.value.messages)
    assert _roles(course) == {"courseadmin": "admin", "coursestaff": "staff"}


def test_an_admin_can_be_removed_when_another_remains(course, course_admin):
    second = UserFactory(username="second")
    course_team_add(course=course, user=second, role="admin", actor=course_admin)

    course_team_remove(course=course, user=course_admin, actor=second)

    assert _roles(course) == {"second": "admin"}


def test_staff_can_be_removed(course, course_admin, course_staff):
    course_team_remove(course=course, user=course_staff, actor=course_admin)
    assert _roles(course) == {"courseadmin": "admin"}


def test_removing_a_non_member_is_an_error(course, course_admin, other_staff):
    with pytest.raises(ValidationError):
        course_team_remove(course=course, user=other_staff, actor=course_admin)
    assert _roles(course) == {"courseadmin": "admin"}


def test_team_roles_are_per_course(course, other_course, course_admin, other_staff):
    course_team_add(course=course, user=other_staff, role="admin", actor=course_admin)
    assert CourseRole.objects.get(course=other_course, user=other_staff).role == "staff"
    assert CourseRole.objects.get(course=course, user=other_staff).role == "admin"


def test_team_member_whose_username_looks_like_an_email_is_enrolled(course, platform_admin):
    from courses.models import CourseRole
    from courses.services import course_team_add
    from enrollments.models import Enrollment
    from tests.factories import UserFactory

    odd = UserFactory(username="jo@old-address.example", email="jo@example.com")
    course_team_add(course=course, user=odd, role=CourseRole.Role.STAFF, actor=platform_admin)
    assert Enrollment.objects.filter(course=course, user=odd, is_active=True).exists()
