"""Courses: key format, org, modes and the database constraints behind them."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from courses.models import Cohort, Course, CourseRole

from ..factories import CohortFactory, CourseFactory, CourseRoleFactory, UserFactory

pytestmark = pytest.mark.django_db


def _course(**fields) -> Course:
    defaults = {"key": "course-v1:Acme+ENR101+2026", "display_name": "Enrollment 101", "modes": "audit"}
    return Course(**{**defaults, **fields})


@pytest.mark.parametrize(
    "key",
    [
        "course-v1:Acme+ENR101+2026",
        "course-v1:edX+DemoX+Demo_Course",
        "course-v1:My.Org+CS-50~x+2026_T1",
    ],
)
def test_valid_course_keys_pass_full_clean(key):
    _course(key=key).full_clean()


@pytest.mark.parametrize(
    "key",
    [
        "Acme+ENR101+2026",  # no prefix
        "course-v2:Acme+ENR101+2026",
        "course-v1:Acme+ENR101",  # no run
        "course-v1:Acme+ENR101+2026+extra",
        "course-v1:+ENR101+2026",  # empty org
        "course-v1:Acme+ENR 101+2026",  # space
        "course-v1:Acme+ENR101+2026/",
        "course-v1:Acme/ENR101/2026",
        "Acme/ENR101/2026",  # old-style slash key
        "course-v1:Ac<me+ENR101+2026",
    ],
)
def test_invalid_course_keys_are_rejected(key):
    with pytest.raises(ValidationError) as excinfo:
        _course(key=key).full_clean()
    assert "key" in excinfo.value.message_dict
    assert "course-v1:ORG+NUMBER+RUN" in " ".join(excinfo.value.message_dict["key"])


def test_course_key_is_required():
    with pytest.raises(ValidationError) as excinfo:
        _course(key="").full_clean()
    assert "key" in excinfo.value.message_dict


def test_course_key_is_unique():
    CourseFactory(key="course-v1:Acme+ENR101+2026")
    with pytest.raises(ValidationError) as excinfo:
        _course().full_clean()
    assert "key" in excinfo.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        _course().save()
    assert Course.objects.filter(key="course-v1:Acme+ENR101+2026").count() == 1


def test_org_number_and_run_come_from_the_key():
    course = _course(key="course-v1:Acme.Labs+ENR101+2026_T1")
    course.save()
    course.refresh_from_db()
    assert course.org == "Acme.Labs"
    assert course.number == "ENR101"
    assert course.run == "2026_T1"
    assert Course.objects.filter(org="Acme.Labs").get() == course


def test_org_follows_a_changed_key():
    course = CourseFactory(key="course-v1:Acme+ENR101+2026")
    course.key = "course-v1:Other+ENR101+2026"
    course.save()
    course.refresh_from_db()
    assert course.org == "Other"


@pytest.mark.parametrize(
    ("modes", "default"),
    [("audit", "audit"), ("verified,audit", "verified"), ("honor, audit, professional", "honor")],
)
def test_default_mode_is_the_first_mode(modes, default):
    course = _course(modes=modes)
    course.full_clean()
    assert course.default_mode == default
    assert course.mode_list[0] == default
    assert all(" " not in m for m in course.mode_list)


@pytest.mark.parametrize(
    ("modes", "message"),
    [
        ("", "blank"),
        (" , ", "at least one mode"),
        ("audit,free", "Unknown mode: free. Choose from"),
        ("Audit,Free", "Unknown modes: Audit, Free. Choose from"),
        ("audit,verified,audit", "once"),
    ],
)
def test_invalid_modes_are_rejected(modes, message):
    with pytest.raises(ValidationError) as excinfo:
        _course(modes=modes).full_clean()
    assert "modes" in excinfo.value.message_dict
    assert message in " ".join(excinfo.value.message_dict["modes"])


def test_all_four_modes_are_accepted():
    _course(modes="audit,honor,verified,professional").full_clean()


def test_course_cannot_end_before_it_starts():
    now = timezone.now()
    with pytest.raises(ValidationError) as excinfo:
        _course(start=now, end=now - dt.timedelta(days=1)).full_clean()
    assert "end" in excinfo.value.message_dict
    with pytest.raises(ValidationError) as excinfo:
        _course(enrollment_start=now, enrollment_end=now - dt.timedelta(days=1)).full_clean()
    assert "enrollment_end" in excinfo.value.message_dict
    # The database refuses it too.
    with pytest.raises(IntegrityError), transaction.atomic():
        _course(start=now, end=now - dt.timedelta(days=1)).save()


def test_enrollment_window():
    now = timezone.now()
    course = _course(enrollment_start=now - dt.timedelta(days=1), enrollment_end=now + dt.timedelta(days=1))
    assert course.enrollment_is_open(now)
    assert not course.enrollment_is_open(now - dt.timedelta(days=2))
    assert not course.enrollment_is_open(now + dt.timedelta(days=2))
    assert _course().enrollment_is_open(now)


def test_one_role_per_user_and_course(course):
    user = UserFactory()
    CourseRoleFactory(course=course, user=user, role=CourseRole.Role.STAFF)
    with pytest.raises(IntegrityError), transaction.atomic():
        CourseRole.objects.create(course=course, user=user, role=CourseRole.Role.ADMIN)


def test_role_must_be_admin_or_staff(course):
    with pytest.raises(IntegrityError), transaction.atomic():
        CourseRole.objects.create(course=course, user=UserFactory(), role="owner")


def test_cohort_names_are_unique_per_course(course, other_course):
    CohortFactory(course=course, name="Morning")
    CohortFactory(course=other_course, name="Morning")
    with pytest.raises(IntegrityError), transaction.atomic():
        Cohort.objects.create(course=course, name="Morning")
