"""The one definition of "platform admin" (accounts/rules.py) and of "may manage
this course" (courses/rules.py), in its two forms: a predicate for one course and
a queryset for lists. They must never disagree."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection

from accounts.rules import is_platform_admin
from courses.models import CourseRole
from courses.rules import can_manage_course, can_manage_course_team, course_ids_managed_by_sql, courses_managed_by

from ..factories import CourseRoleFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_managed_by(course, other_course, course_staff, platform_admin, learner):
    assert list(courses_managed_by(user=course_staff)) == [course]
    assert set(courses_managed_by(user=platform_admin)) == {course, other_course}
    assert not courses_managed_by(user=learner).exists()


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"is_staff": True}, True),
        ({"is_superuser": True}, True),
        ({"is_staff": True, "is_superuser": True}, True),
        ({"is_staff": True, "is_active": False}, False),
        ({"is_superuser": True, "is_active": False}, False),
        ({}, False),
    ],
)
def test_platform_admin_is_an_active_staff_or_superuser_account(fields, expected):
    user = UserFactory(**fields)
    assert is_platform_admin(user) is expected
    assert user.is_platform_admin is expected  # the property templates use is the same rule


def test_anonymous_and_none_are_not_platform_admins():
    assert is_platform_admin(AnonymousUser()) is False
    assert is_platform_admin(None) is False


def test_the_predicate_and_the_list_agree_for_every_persona(course, other_course, platform_admin, course_admin, course_staff, other_staff, learner):
    inactive_staff = UserFactory(username="gone", is_active=False)
    CourseRoleFactory(course=course, user=inactive_staff, role=CourseRole.Role.STAFF)
    superuser_only = UserFactory(username="root", is_superuser=True)
    people = [platform_admin, course_admin, course_staff, other_staff, learner, inactive_staff, superuser_only, AnonymousUser()]
    for person in people:
        listed = set(courses_managed_by(user=person))
        for each in (course, other_course):
            assert can_manage_course(person, each) is (each in listed), (person, each)
    assert set(courses_managed_by(user=superuser_only)) == {course, other_course}
    assert not courses_managed_by(user=inactive_staff).exists()
    assert not courses_managed_by(user=AnonymousUser()).exists()
    for person in people:
        # The same set as SQL text, for statements written by hand (the enrollment list API).
        sql, params = course_ids_managed_by_sql(user=person)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            ids = {row[0] for row in cursor.fetchall()}
        assert ids == {c.pk for c in courses_managed_by(user=person)}, person


def test_only_course_admins_and_platform_admins_manage_the_team(course, platform_admin, course_admin, course_staff, other_staff):
    assert [can_manage_course_team(u, course) for u in (platform_admin, course_admin, course_staff, other_staff)] == [True, True, False, False]
