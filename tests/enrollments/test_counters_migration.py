"""enrollments 0023: the ends per day come in with their past, counted from the
audit trail, and the triggers count ends from then on; taking it back leaves
the triggers of 0019 counting the rest."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from enrollments.models import Enrollment, EnrollmentDayCount, State

from ..factories import CourseFactory, EnrollmentFactory, UserFactory

BEFORE = [("enrollments", "0022_notification_period_kinds")]
AFTER = [("enrollments", "0023_enrollmentdaycount_ended")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def day_counts(course):
    with connection.cursor() as cursor:
        cursor.execute("SELECT day, new, active FROM enrollments_enrollmentdaycount WHERE course_id = %s ORDER BY day", [course.pk])
        return [(str(day), new, active) for day, new, active in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_the_ends_of_the_past_come_from_the_audit_trail_and_new_ends_are_counted():
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    course = CourseFactory()
    enrollment = EnrollmentFactory(course=course)
    try:
        migrate(BEFORE)
        Enrollment.objects.filter(pk=enrollment.pk).update(is_active=False)  # counted by 0019's triggers, which know no ends
        day = timezone.localdate()
        assert day_counts(course) == [(str(day), 1, 0)]
        past = timezone.now() - timezone.timedelta(days=3)
        with connection.cursor() as cursor:  # the audit rows as they were (columns of 0020)
            for state_before, state_after in [(State.ENROLLED, State.UNENROLLED)] * 2 + [(State.ENROLLED, State.NONE), (State.UNENROLLED, State.ENROLLED)]:
                cursor.execute(
                    "INSERT INTO enrollments_enrollmentaudit (created, course_id, identifier, state_before, state_after, source, reason,"
                    " mode_before, mode_after, cohort_before, cohort_after) VALUES (%s, %s, 'x', %s, %s, 'batch', '', '', '', '', '')",
                    [past, course.pk, state_before, state_after],
                )

        migrate(AFTER)
        # Only "enrolled" to "unenrolled" is an end (an undone enrollment is deleted, not ended); today's end had no audit row.
        assert set(EnrollmentDayCount.objects.filter(course=course).exclude(ended=0).values_list("day", "ended")) == {(past.date(), 2)}
        Enrollment.objects.filter(pk=EnrollmentFactory(course=course).pk).update(is_active=False)
        assert EnrollmentDayCount.objects.get(course=course, day=day).ended == 1

        migrate(BEFORE)
        EnrollmentFactory(course=course, user=UserFactory())
        assert day_counts(course) == [(str(past.date()), 0, 0), (str(day), 3, 1)]
    finally:
        migrate(leaves)
