"""Periods on the learner's own ways in: self-enrollment and account activation
(auto-enroll invitations), and what the course page tells the learner."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from enrollments.models import Enrollment, EnrollmentAudit
from enrollments.services import allowance_consume_for, enrollment_self_enroll
from tests.factories import AllowanceFactory, CourseFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@time_machine.travel(NOW, tick=False)
def test_self_enrollment_gets_the_course_default(course, learner):
    course.default_duration_days = 30
    course.save()
    enrollment = enrollment_self_enroll(user=learner, course=course)
    assert (enrollment.access_from, enrollment.access_until) == (None, NOW + timedelta(days=30))
    audit = EnrollmentAudit.objects.get(user=learner)
    assert (audit.access_until_before, audit.access_until_after) == (None, NOW + timedelta(days=30))


@time_machine.travel(NOW, tick=False)
def test_enrolling_again_replaces_an_ended_period_with_the_course_default(course, learner):
    EnrollmentFactory(course=course, user=learner, is_active=False, access_until=NOW - timedelta(days=5))
    enrollment = enrollment_self_enroll(user=learner, course=course)
    enrollment.refresh_from_db()
    assert enrollment.is_active and enrollment.access_until is None


@time_machine.travel(NOW, tick=False)
def test_an_unused_invitation_gives_its_period_to_self_enrollment(course, learner):
    course.default_duration_days = 30
    course.save()
    AllowanceFactory(course=course, email=learner.email, auto_enroll=False, duration_days=365)
    enrollment = enrollment_self_enroll(user=learner, course=course)
    assert enrollment.access_until == NOW + timedelta(days=365)


@time_machine.travel(NOW, tick=False)
def test_activation_gives_each_invitation_its_period_or_the_course_default():
    dated, timed, plain = CourseFactory(), CourseFactory(default_duration_days=7), CourseFactory()
    end = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    AllowanceFactory(course=dated, email="new@example.com", access_from=NOW + timedelta(days=1), access_until=end)
    AllowanceFactory(course=timed, email="new@example.com")
    AllowanceFactory(course=plain, email="new@example.com", duration_days=90)
    user = UserFactory(username="new", email="new@example.com")
    allowance_consume_for(user=user)
    periods = {e.course_id: (e.access_from, e.access_until) for e in Enrollment.objects.filter(user=user)}
    assert periods == {
        dated.pk: (NOW + timedelta(days=1), end), timed.pk: (None, NOW + timedelta(days=7)), plain.pk: (None, NOW + timedelta(days=90)),
    }
    audited = dict(EnrollmentAudit.objects.filter(user=user).values_list("course_id", "access_until_after"))
    assert audited == {course_id: until for course_id, (_, until) in periods.items()}


def test_the_course_page_shows_the_learner_their_period(client_for, course, learner):
    until = datetime(2030, 6, 30, 23, 59, tzinfo=UTC)
    EnrollmentFactory(course=course, user=learner, access_from=datetime(2030, 1, 1, tzinfo=UTC), access_until=until)
    page = client_for(learner).get(reverse("course_detail", args=[course.key])).content.decode()
    assert "Access from 1 Jan 2030 00:00 (UTC); Access until 30 Jun 2030 23:59 (UTC)." in page


def test_the_course_page_says_an_ended_period_ended(client_for, course, learner):
    EnrollmentFactory(course=course, user=learner, access_until=datetime(2020, 6, 30, 12, 0, tzinfo=UTC))
    page = client_for(learner).get(reverse("course_detail", args=[course.key])).content.decode()
    assert "Your access ended on 30 Jun 2020 12:00 (UTC)." in page


def test_the_course_page_tells_a_visitor_the_default_period_before_enrolling(client_for, course, learner):
    course.default_duration_days = 1
    course.save()
    page = client_for(learner).get(reverse("course_detail", args=[course.key])).content.decode()
    assert 'id="enrollment-default-access">Access: 1 day from enrolling.<' in page
