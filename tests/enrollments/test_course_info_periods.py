"""Course info with enrollment periods: of the active enrollments, how many
have not started and how many end within the reminder window; one query read
through the partial indexes on rows with a period."""

import datetime as dt

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from enrollments.models import Enrollment
from enrollments.selectors import period_counts

from ..factories import EnrollmentFactory

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


@pytest.fixture
def course_with_periods(course):
    now = timezone.now()
    EnrollmentFactory.create_batch(2, course=course, access_from=now + 3 * DAY)  # not started
    EnrollmentFactory(course=course, access_until=now + 2 * DAY)  # ends within 7 days
    EnrollmentFactory(course=course, access_until=now + 30 * DAY)  # ends later
    EnrollmentFactory(course=course, access_until=now - DAY)  # ended already
    EnrollmentFactory(course=course, is_active=False, access_from=now + DAY, access_until=now + 2 * DAY)  # unenrolled: not counted
    EnrollmentFactory(course=course)
    return course


def test_the_counts_follow_the_reminder_window(course_with_periods):
    course = course_with_periods
    assert period_counts(course=course) == {"upcoming": 2, "ending": 1, "days": 7}
    course.expiry_reminder_days = 40
    assert period_counts(course=course) == {"upcoming": 2, "ending": 2, "days": 40}
    course.expiry_reminder_days = None  # no reminders: the default window
    assert period_counts(course=course)["days"] == 7


def test_the_page_says_so_next_to_the_total(client_for, course_with_periods, course_staff):
    html = client_for(course_staff).get(reverse("instructor_info", args=[course_with_periods.key])).content.decode()
    assert "2 of them have not started yet</a>" in html and "?status=upcoming" in html
    assert "1 of them has access ending within 7 days." in html
    assert 'id="enrollment-total">6<' in html  # the total stays the counters' active rows (ended ones too)


def test_nothing_is_said_without_periods(client_for, course, course_staff):
    EnrollmentFactory(course=course)
    assert 'id="enrollment-periods"' not in client_for(course_staff).get(reverse("instructor_info", args=[course.key])).content.decode()


@pytest.mark.postgresql
def test_the_query_can_read_the_partial_indexes_only(course_with_periods):
    now = timezone.now()
    qs = Enrollment.objects.filter(course=course_with_periods, is_active=True, access_from__gt=now)
    ends = Enrollment.objects.filter(course=course_with_periods, is_active=True, access_until__gt=now, access_until__lte=now + 7 * DAY)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plans = [qs.explain(), ends.explain()]
    assert "enrollment_course_upcoming" in plans[0]
    assert "enrollment_course_ends" in plans[1] or "enrollment_expiry_due" in plans[1]
