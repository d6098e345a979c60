"""The enrollment period rules every way in shares (``enrollments.periods``)."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from courses.models import Course
from enrollments import periods
from enrollments.periods import Period, PeriodRequest, period_for, period_request, status

NOW = timezone.make_aware(datetime.datetime(2026, 6, 1, 12, 0))
DAY = datetime.timedelta(days=1)


def _course(**fields) -> Course:
    return Course(key="course-v1:Org+P+1", display_name="P", **fields)


def test_a_bare_end_date_is_the_last_instant_of_that_day_in_the_site_zone():
    asked = period_request(access_from="2026-07-01", access_until="2026-12-31")
    local_end = timezone.localtime(asked.access_until)
    assert (local_end.date(), local_end.hour, local_end.minute) == (datetime.date(2026, 12, 31), 23, 59)
    assert timezone.localtime(asked.access_from).time() == datetime.time.min


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"access_from": "2026-12-31", "access_until": "2026-01-01"}, "access_until"),
        ({"access_from": "2026-05-05", "access_until": "2026-05-05 00:00"}, "access_until"),
        ({"duration_days": 0}, "duration_days"),
        ({"duration_days": -3}, "duration_days"),
        ({"duration_days": 3651}, "duration_days"),
        ({"duration_days": "a year"}, "duration_days"),
        ({"access_until": "31/12/2026"}, "access_until"),
        ({"access_from": "2026-02-30"}, "access_from"),
        ({"access_until": "2026-12-31", "duration_days": 30}, "duration_days"),
    ],
)
def test_bad_periods_name_the_field(fields, field):
    with pytest.raises(ValidationError) as caught:
        period_request(**fields)
    assert field in caught.value.message_dict


def test_what_was_asked_wins_over_the_course_default_and_a_duration_counts_from_the_start():
    course = _course(default_duration_days=365)
    assert period_for(course, PeriodRequest(duration_days=30), now=NOW) == Period(None, NOW + 30 * DAY)
    start = NOW + 10 * DAY
    assert period_for(course, PeriodRequest(access_from=start, duration_days=30), now=NOW) == Period(start, start + 30 * DAY)


def test_the_course_default_is_a_duration_from_enrolling_or_a_fixed_end_whichever_comes_first():
    assert period_for(_course(), None, now=NOW) == Period()
    assert period_for(_course(default_duration_days=7), None, now=NOW) == Period(None, NOW + 7 * DAY)
    fixed = NOW + 3 * DAY
    assert period_for(_course(default_duration_days=7, default_access_until=fixed), None, now=NOW) == Period(None, fixed)


def test_status_names_the_four_cases():
    assert status(is_active=True, access_from=None, access_until=None, now=NOW) == periods.ACTIVE
    assert status(is_active=True, access_from=NOW + DAY, access_until=None, now=NOW) == periods.UPCOMING
    assert status(is_active=True, access_from=None, access_until=NOW, now=NOW) == periods.EXPIRED
    assert status(is_active=False, access_from=None, access_until=NOW - DAY, now=NOW) == periods.EXPIRED
    assert status(is_active=False, access_from=None, access_until=NOW + DAY, now=NOW) == periods.INACTIVE
    assert status(is_active=True, access_from=NOW - DAY, access_until=NOW + DAY, now=NOW) == periods.ACTIVE


@pytest.mark.django_db
def test_the_status_filters_and_expression_agree_with_status_row_for_row():
    from enrollments.models import Enrollment
    from tests.factories import CourseFactory, EnrollmentFactory

    course = CourseFactory()
    cases = [(True, None, None), (True, NOW + DAY, None), (True, None, NOW - DAY), (False, None, NOW - DAY), (False, None, None), (True, NOW - DAY, NOW + DAY)]
    for is_active, start, end in cases:
        EnrollmentFactory(course=course, is_active=is_active, access_from=start, access_until=end)
    rows = Enrollment.objects.filter(course=course).annotate(status=periods.status_expression(NOW))
    for row in rows:
        expected = status(is_active=row.is_active, access_from=row.access_from, access_until=row.access_until, now=NOW)
        assert row.status == expected
        assert Enrollment.objects.filter(periods.status_q(expected, NOW), pk=row.pk).exists()
        others = [s for s in periods.STATUSES if s != expected]
        assert not any(Enrollment.objects.filter(periods.status_q(s, NOW), pk=row.pk).exists() for s in others)
    assert Enrollment.objects.filter(periods.enrolled_q(NOW), course=course).count() == 2
