"""Joining a course team enrolls: adding a member, and creating a course (its creator
becomes its first admin). The role rules themselves: tests/courses/test_services.py."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from courses.models import Course, CourseRole
from enrollments.models import Enrollment, EnrollmentAudit, Source
from enrollments.periods import NO_PERIOD, UNBOUNDED, period_for
from enrollments.services.batch import enrollment_batch_update
from enrollments.services.team import course_create_with_admin, course_team_member_add

from ..factories import EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def _roles(course) -> dict[str, str]:
    return dict(CourseRole.objects.filter(course=course).values_list("user__username", "role"))


def _is_enrolled(user, course) -> bool:
    return Enrollment.objects.filter(user=user, course=course, is_active=True).exists()


def test_course_create_makes_the_creator_an_enrolled_admin(platform_admin):
    course = course_create_with_admin(actor=platform_admin, key="course-v1:Acme+NEW+2026", display_name="New course", modes="verified,audit")

    assert course.pk is not None
    assert course.org == "Acme"
    assert course.created_by == platform_admin
    assert _roles(course) == {"platformadmin": "admin"}
    enrollment = Enrollment.objects.get(user=platform_admin, course=course)
    assert enrollment.is_active
    assert enrollment.mode == "verified"  # the course's default mode


def test_course_create_validates_and_saves_nothing_on_error(platform_admin):
    with pytest.raises(ValidationError) as excinfo:
        course_create_with_admin(actor=platform_admin, key="not-a-key", display_name="Broken")
    assert "key" in excinfo.value.message_dict
    assert not Course.objects.exists()
    assert not CourseRole.objects.exists()


def test_team_add_gives_the_role_and_enrolls(course, course_admin):
    newcomer = UserFactory(username="newcomer")

    role = course_team_member_add(course=course, user=newcomer, role="staff", actor=course_admin)

    assert role.role == "staff"
    assert _roles(course)["newcomer"] == "staff"
    assert _is_enrolled(newcomer, course)
    audit = EnrollmentAudit.objects.filter(course=course).latest("pk")
    assert audit.source == Source.TEAM


def test_a_team_member_gets_no_end_where_a_learner_gets_the_course_default(course, course_admin):
    course.default_duration_days = 30
    course.save()
    UserFactory(username="learner")
    member = UserFactory(username="member")
    former = UserFactory(username="former")
    EnrollmentFactory(user=former, course=course, is_active=False, access_until=datetime(2025, 1, 1, tzinfo=UTC))

    enrollment_batch_update(course=course, identifiers=["learner"], action="enroll", auto_enroll=True,
                            email_students=False, actor=course_admin)
    course_team_member_add(course=course, user=member, role="staff", actor=course_admin)
    course_team_member_add(course=course, user=former, role="staff", actor=course_admin)

    by_name = {e.user.username: e for e in Enrollment.objects.filter(course=course).select_related("user")}
    assert by_name["learner"].access_until == by_name["learner"].created + timedelta(days=30)
    assert by_name["member"].access_until is None
    assert by_name["former"].is_active and by_name["former"].access_until is None
    assert EnrollmentAudit.objects.get(user=member, course=course).access_until_after is None


def test_no_period_means_no_bounds_whatever_the_course_default(course):
    course.default_duration_days = 30
    course.default_access_until = datetime(2030, 1, 1, tzinfo=UTC)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert period_for(course, NO_PERIOD, now=now) == UNBOUNDED
    assert period_for(course, None, now=now).access_until == now + timedelta(days=30)


def test_team_add_reactivates_an_old_enrollment(course, course_admin):
    member = UserFactory(username="returning")
    old = EnrollmentFactory(user=member, course=course, is_active=False, mode="verified")

    course_team_member_add(course=course, user=member, role="staff", actor=course_admin)

    old.refresh_from_db()
    assert old.is_active
    assert Enrollment.objects.filter(user=member, course=course).count() == 1


def test_team_member_whose_username_looks_like_an_email_is_enrolled(course, platform_admin):
    odd = UserFactory(username="jo@old-address.example", email="jo@example.com")
    course_team_member_add(course=course, user=odd, role=CourseRole.Role.STAFF, actor=platform_admin)
    assert Enrollment.objects.filter(course=course, user=odd, is_active=True).exists()


def test_a_refused_role_change_enrolls_nobody(course, course_admin):
    with pytest.raises(ValidationError):
        course_team_member_add(course=course, user=course_admin, role="staff", actor=course_admin)  # the last admin
    newcomer = UserFactory(username="newcomer")
    with pytest.raises(ValidationError):
        course_team_member_add(course=course, user=newcomer, role="owner", actor=course_admin)
    assert not _is_enrolled(newcomer, course)
    assert _roles(course) == {"courseadmin": "admin"}


def test_the_courses_role_service_alone_does_not_enroll(course, course_admin):
    """courses knows nothing of enrollments: only the enrollments service enrolls."""
    from courses.services import course_role_grant

    newcomer = UserFactory(username="newcomer")
    course_role_grant(course=course, user=newcomer, role="staff", actor=course_admin)
    assert _roles(course)["newcomer"] == "staff"
    assert not Enrollment.objects.filter(user=newcomer, course=course).exists()


def test_a_course_created_in_the_admin_has_its_creator_as_enrolled_admin(client_for, platform_admin):
    from django.urls import reverse

    response = client_for(platform_admin).post(
        reverse("admin:courses_course_add"),
        {
            "key": "course-v1:Acme+ADM1+2026", "display_name": "Made in the admin", "modes": "audit",
            "roles-TOTAL_FORMS": "0", "roles-INITIAL_FORMS": "0", "roles-MIN_NUM_FORMS": "0", "roles-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    course = Course.objects.get(key="course-v1:Acme+ADM1+2026")
    assert course.created_by == platform_admin
    assert _roles(course) == {"platformadmin": "admin"}
    assert _is_enrolled(platform_admin, course)
