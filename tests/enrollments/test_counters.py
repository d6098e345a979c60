"""The enrollment counters: kept by database triggers, equal to a fresh count after every kind of change."""

import pytest
from django.db import connection

from enrollments import counters
from enrollments.models import Enrollment, EnrollmentCount, EnrollmentDayCount
from tests.factories import CourseFactory, EnrollmentFactory


def fresh_drift():
    modes, days = counters.drift_sql(connection.vendor, "UTC")
    with connection.cursor() as cursor:
        cursor.execute(modes)
        mode_rows = cursor.fetchall()
        cursor.execute(days)
        day_rows = cursor.fetchall()
    return mode_rows, day_rows


@pytest.mark.django_db
def test_smoke():
    course = CourseFactory()
    e = EnrollmentFactory(course=course)
    EnrollmentFactory(course=course, is_active=False)
    assert fresh_drift() == ([], [])
    Enrollment.objects.filter(pk=e.pk).update(is_active=False)
    assert fresh_drift() == ([], [])
    Enrollment.objects.filter(course=course).update(mode="verified", is_active=True)
    assert fresh_drift() == ([], [])
    print(list(EnrollmentCount.objects.values()), list(EnrollmentDayCount.objects.values()))
    Enrollment.objects.all().delete()
    assert fresh_drift() == ([], [])
    course.delete()
    assert fresh_drift() == ([], [])
