"""Expiry reminders: N days before the end, one email per enrollment and
period, the course team's one summary, off when the course says so, and a
query count that does not grow with the enrollments."""

import datetime

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from courses.models import CourseRole
from enrollments.models import Enrollment, Notification
from enrollments.services import enrollments_remind, notifications_send
from enrollments.tasks import remind_expiring

from ..factories import CourseFactory, CourseRoleFactory, EnrollmentFactory, UserFactory
from ..races import call_together

NOW = timezone.make_aware(datetime.datetime(2026, 6, 1, 9, 0))
DAY = datetime.timedelta(days=1)


def _learner_reminders():
    return Notification.objects.filter(kind=Notification.Kind.EXPIRING)


@pytest.mark.django_db
def test_a_learner_is_reminded_once_within_the_courses_days_and_not_before():
    course = CourseFactory(display_name="Fire safety", expiry_reminder_days=7)
    soon = EnrollmentFactory(course=course, access_until=NOW + 7 * DAY)
    EnrollmentFactory(course=course, access_until=NOW + 7 * DAY + datetime.timedelta(hours=3))  # not yet
    EnrollmentFactory(course=course, access_until=NOW - DAY)  # ended already: the expiry run's
    EnrollmentFactory(course=course, access_until=NOW + DAY, is_active=False)
    assert enrollments_remind(now=NOW).learners == 1
    assert enrollments_remind(now=NOW + datetime.timedelta(hours=1)).learners == 0
    note = _learner_reminders().get()
    assert (note.recipient, note.subject) == (soon.user.email, "Your access to Fire safety ends soon")
    assert f"ends on {timezone.localtime(soon.access_until):%-d %B %Y}" in note.body
    assert note.body.startswith(f"Dear {soon.user.display_name},")
    soon.refresh_from_db()
    assert soon.reminded_until == soon.access_until
    assert notifications_send() == 1
    assert mail.outbox[0].to == [soon.user.email] and "Fire safety" in mail.outbox[0].body


@pytest.mark.django_db
def test_a_new_period_gets_its_own_reminder():
    course = CourseFactory(expiry_reminder_days=7)
    enrollment = EnrollmentFactory(course=course, access_until=NOW + 2 * DAY)
    enrollments_remind(now=NOW)
    Enrollment.objects.filter(pk=enrollment.pk).update(access_until=NOW + 5 * DAY)  # extended
    assert enrollments_remind(now=NOW).learners == 1
    assert _learner_reminders().count() == 2


@pytest.mark.django_db
def test_rows_outside_a_short_window_do_not_hide_a_long_windows_rows_behind_them():
    # A full chunk of rows a short window does not cover yet, ending before the
    # one row a long window does: the scan must read past them, on SQLite too
    # (where the window is applied after the read).
    short = CourseFactory(expiry_reminder_days=2)
    for _ in range(3):
        EnrollmentFactory(course=short, access_until=NOW + 5 * DAY)
    long = CourseFactory(expiry_reminder_days=30)
    due = EnrollmentFactory(course=long, access_until=NOW + 20 * DAY)
    assert enrollments_remind(now=NOW, chunk=2).learners == 1
    assert _learner_reminders().get().recipient == due.user.email


@pytest.mark.django_db
def test_reminders_are_off_when_the_course_sets_no_days():
    course = CourseFactory(expiry_reminder_days=None, expiry_reminder_team=True)
    CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN)
    EnrollmentFactory(course=course, access_until=NOW + DAY)
    with CaptureQueriesContext(connection) as queries:
        assert enrollments_remind(now=NOW).summary() == {"learners": 0, "team_summaries": 0}
    assert len(queries) == 1  # no course reminds: nothing is scanned
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_the_course_team_gets_one_summary_listing_whose_access_ends():
    course = CourseFactory(display_name="Hygiene", expiry_reminder_days=3, expiry_reminder_team=True)
    admin = CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN).user
    staff = CourseRoleFactory(course=course, role=CourseRole.Role.STAFF).user
    learners = [EnrollmentFactory(course=course, access_until=NOW + DAY * (i + 1)) for i in range(3)]
    quiet = CourseFactory(expiry_reminder_days=3, expiry_reminder_team=False)
    CourseRoleFactory(course=quiet, role=CourseRole.Role.ADMIN)
    EnrollmentFactory(course=quiet, access_until=NOW + DAY)
    run = enrollments_remind(now=NOW)
    assert run.summary() == {"learners": 4, "team_summaries": 2}
    summaries = Notification.objects.filter(kind=Notification.Kind.EXPIRING_TEAM).order_by("recipient")
    assert sorted(n.recipient for n in summaries) == sorted([admin.email, staff.email])
    body = summaries[0].body
    assert "ends soon for 3 learners:" in body
    for enrollment in learners:
        assert enrollment.user.username in body


@pytest.mark.django_db
def test_the_reminder_scan_costs_the_same_queries_for_few_and_many():
    def queries_for(count):
        course = CourseFactory(expiry_reminder_days=7, expiry_reminder_team=True)
        CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN)
        for _ in range(count):
            EnrollmentFactory(course=course, access_until=NOW + DAY)
        with CaptureQueriesContext(connection) as queries:
            assert enrollments_remind(now=NOW).learners == count
        return len(queries)

    assert queries_for(2) == queries_for(15)


@pytest.mark.django_db
def test_a_learner_without_an_address_is_marked_and_still_listed_to_the_team():
    course = CourseFactory(expiry_reminder_days=7, expiry_reminder_team=True)
    CourseRoleFactory(course=course, role=CourseRole.Role.STAFF)
    enrollment = EnrollmentFactory(course=course, access_until=NOW + DAY, user=UserFactory(email="", username="no-address"))
    assert enrollments_remind(now=NOW).summary() == {"learners": 0, "team_summaries": 1}
    assert "no-address" in Notification.objects.get(kind=Notification.Kind.EXPIRING_TEAM).body
    enrollment.refresh_from_db()
    assert enrollment.reminded_until == enrollment.access_until


@pytest.mark.django_db
def test_the_beat_task_reminds_at_the_time_it_runs():
    course = CourseFactory(expiry_reminder_days=7)
    EnrollmentFactory(course=course, access_until=NOW + 8 * DAY)
    with time_machine.travel(NOW, tick=False):
        assert remind_expiring() == {"learners": 0, "team_summaries": 0}
    with time_machine.travel(NOW + DAY, tick=False):
        assert remind_expiring() == {"learners": 1, "team_summaries": 0}


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_remind_each_learner_once():
    course = CourseFactory(expiry_reminder_days=7)
    rows = [EnrollmentFactory(course=course, access_until=NOW + DAY) for _ in range(30)]
    runs = call_together([lambda: enrollments_remind(now=NOW, chunk=4), lambda: enrollments_remind(now=NOW, chunk=4)])
    assert sum(run.learners for run in runs) == 30, runs
    assert sorted(_learner_reminders().values_list("recipient", flat=True)) == sorted(e.user.email for e in rows)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(e.user.email for e in rows)
