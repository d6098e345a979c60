"""Course services: the course team's roles with the last-admin rule (joining a team also
enrolls: tests/enrollments/test_team_services.py). Finding a user by username or
email: tests/accounts/test_selectors.py."""

import pytest
from django.core.exceptions import ValidationError

from courses.models import CourseRole
from courses.services import course_role_grant, course_role_revoke

from ..factories import UserFactory

pytestmark = pytest.mark.django_db


def _roles(course) -> dict[str, str]:
    return dict(CourseRole.objects.filter(course=course).values_list("user__username", "role"))


def test_team_add_changes_an_existing_role(course, course_admin, course_staff):
    course_role_grant(course=course, user=course_staff, role="admin", actor=course_admin)
    assert _roles(course) == {"courseadmin": "admin", "coursestaff": "admin"}
    # With two admins, one may step down to staff.
    course_role_grant(course=course, user=course_admin, role="staff", actor=course_staff)
    assert _roles(course) == {"courseadmin": "staff", "coursestaff": "admin"}
    assert CourseRole.objects.filter(course=course).count() == 2


def test_team_add_rejects_an_unknown_role(course, course_admin):
    with pytest.raises(ValidationError):
        course_role_grant(course=course, user=UserFactory(), role="owner", actor=course_admin)
    assert _roles(course) == {"courseadmin": "admin"}


def test_last_admin_cannot_be_demoted(course, course_admin, course_staff):
    with pytest.raises(ValidationError) as excinfo:
        course_role_grant(course=course, user=course_admin, role="staff", actor=course_admin)
    assert "at least one admin" in " ".join(excinfo.value.messages)
    assert _roles(course) == {"courseadmin": "admin", "coursestaff": "staff"}


def test_last_admin_cannot_be_removed(course, course_admin, course_staff):
    with pytest.raises(ValidationError) as excinfo:
        course_role_revoke(course=course, user=course_admin, actor=course_admin)
    assert "at least one admin" in " ".join(excinfo.value.messages)
    assert _roles(course) == {"courseadmin": "admin", "coursestaff": "staff"}


def test_an_admin_can_be_removed_when_another_remains(course, course_admin):
    second = UserFactory(username="second")
    course_role_grant(course=course, user=second, role="admin", actor=course_admin)

    course_role_revoke(course=course, user=course_admin, actor=second)

    assert _roles(course) == {"second": "admin"}


def test_staff_can_be_removed(course, course_admin, course_staff):
    course_role_revoke(course=course, user=course_staff, actor=course_admin)
    assert _roles(course) == {"courseadmin": "admin"}


def test_removing_a_non_member_is_an_error(course, course_admin, other_staff):
    with pytest.raises(ValidationError):
        course_role_revoke(course=course, user=other_staff, actor=course_admin)
    assert _roles(course) == {"courseadmin": "admin"}


def test_team_roles_are_per_course(course, other_course, course_admin, other_staff):
    course_role_grant(course=course, user=other_staff, role="admin", actor=course_admin)
    assert CourseRole.objects.get(course=other_course, user=other_staff).role == "staff"
    assert CourseRole.objects.get(course=course, user=other_staff).role == "admin"
