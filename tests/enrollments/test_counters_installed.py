"""The counters' triggers are on the enrollments table after every migration.
On SQLite a migration that rebuilds the table drops them with it
(``enrollments/counters.py``); counts would then silently stop moving."""

import pytest
from django.db import connection

from enrollments.models import Enrollment, EnrollmentCount

from ..factories import CourseFactory, UserFactory

TRIGGERS = {"enrollment_counts_insert", "enrollment_counts_update", "enrollment_counts_delete"}


@pytest.mark.django_db
def test_every_counter_trigger_is_installed_after_the_migrations():
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'enrollments_enrollment'")
        else:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'enrollments_enrollment'::regclass AND NOT tgisinternal")
        installed = {name for (name,) in cursor.fetchall()}
    assert TRIGGERS <= installed


@pytest.mark.django_db
def test_an_enrollment_written_by_the_orm_moves_the_counters():
    course = CourseFactory()
    Enrollment.objects.create(user=UserFactory(), course=course, mode="audit")
    assert EnrollmentCount.objects.get(course=course, mode="audit").active == 1
