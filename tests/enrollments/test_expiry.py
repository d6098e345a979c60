"""The expiry run: periods that have ended are ended like an unenroll (row
kept, audited, one email), at the boundary instant, once however often and
however many workers run it, in a fixed number of queries."""

import datetime

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from enrollments.models import Enrollment, EnrollmentAudit, EnrollmentCount, Notification, Source, State
from enrollments.services import enrollments_expire, expiry, notifications_send
from enrollments.tasks import expire_enrollments

from ..factories import CourseFactory, EnrollmentFactory, UserFactory
from ..races import call_together

END = timezone.make_aware(datetime.datetime(2026, 6, 30, 23, 59))
SECOND = datetime.timedelta(seconds=1)


def _enroll(course, count, *, until=END, **fields):
    return [EnrollmentFactory(course=course, access_until=until, **fields) for _ in range(count)]


@pytest.mark.django_db
def test_nothing_ends_a_second_before_and_everything_due_ends_at_the_instant():
    course = CourseFactory(display_name="Safety 101")
    due = _enroll(course, 2)
    later = EnrollmentFactory(course=course, access_until=END + SECOND)
    unbounded = EnrollmentFactory(course=course)
    assert enrollments_expire(now=END - SECOND).ended == 0
    run = enrollments_expire(now=END)
    assert run.ended == 2
    states = dict(Enrollment.objects.values_list("id", "is_active"))
    assert [states[e.pk] for e in due] == [False, False]
    assert states[later.pk] and states[unbounded.pk]
    # The row is kept with its period: the learner's history and the status "expired".
    assert Enrollment.objects.get(pk=due[0].pk).access_until == END


@pytest.mark.django_db
def test_an_expiry_is_audited_as_an_unenroll_with_its_period_and_one_operation_per_course():
    first, second = CourseFactory(), CourseFactory()
    rows = _enroll(first, 2, access_from=END - datetime.timedelta(days=30)) + _enroll(second, 1)
    run = enrollments_expire(now=END)
    audits = list(EnrollmentAudit.objects.order_by("id"))
    assert len(audits) == 3
    assert {(a.state_before, a.state_after, a.source, a.actor_id) for a in audits} == {(State.ENROLLED, State.UNENROLLED, Source.EXPIRY, None)}
    assert {a.user_id for a in audits} == {e.user_id for e in rows}
    assert audits[0].identifier == rows[0].user.username
    assert (audits[0].access_until_before, audits[0].access_until_after) == (END, END)
    assert audits[0].access_from_before == audits[0].access_from_after == END - datetime.timedelta(days=30)
    operations = {a.course_id: set() for a in audits}
    for a in audits:
        operations[a.course_id].add(a.operation_id)
    assert operations == {first.pk: {run.ended_operations[first.pk]}, second.pk: {run.ended_operations[second.pk]}}
    assert run.ended_operations[first.pk] != run.ended_operations[second.pk]


@pytest.mark.django_db
def test_the_learner_is_told_once_and_the_counters_follow():
    course = CourseFactory(display_name="Forklift basics")
    enrollment = _enroll(course, 1)[0]
    no_address = EnrollmentFactory(course=course, access_until=END, user=UserFactory(email=""))
    enrollments_expire(now=END)
    enrollments_expire(now=END + datetime.timedelta(days=1))
    notes = list(Notification.objects.all())
    assert [(n.kind, n.recipient, n.subject) for n in notes] == [
        (Notification.Kind.EXPIRED, enrollment.user.email, "Your access to Forklift basics has ended")
    ]
    assert notes[0].name == enrollment.user.display_name
    assert EnrollmentAudit.objects.filter(user=no_address.user).count() == 1
    assert notifications_send() == 1
    assert "Your access to Forklift basics" in mail.outbox[0].body and "has ended" in mail.outbox[0].body
    assert mail.outbox[0].to == [enrollment.user.email]


@pytest.mark.postgresql  # on SQLite the counter triggers do not survive migration 0020 rebuilding the table
@pytest.mark.django_db
def test_the_counters_count_an_expiry_as_an_unenroll():
    course = CourseFactory()
    _enroll(course, 2)
    enrollments_expire(now=END)
    counts = EnrollmentCount.objects.get(course=course, mode="audit")
    assert (counts.active, counts.inactive) == (0, 2)


@pytest.mark.django_db
def test_a_second_run_changes_nothing():
    course = CourseFactory()
    _enroll(course, 3)
    assert enrollments_expire(now=END).ended == 3
    again = enrollments_expire(now=END + datetime.timedelta(hours=1))
    assert (again.ended, again.renewed) == (0, 0)
    assert EnrollmentAudit.objects.count() == 3
    assert Notification.objects.count() == 3


@pytest.mark.django_db
def test_inactive_rows_and_rows_already_unenrolled_are_left_alone():
    course = CourseFactory()
    EnrollmentFactory(course=course, access_until=END, is_active=False)
    assert enrollments_expire(now=END).ended == 0
    assert not EnrollmentAudit.objects.exists()


@pytest.mark.django_db
def test_the_query_count_does_not_grow_with_the_rows_expired(monkeypatch):
    def queries_to_expire(count):
        course = CourseFactory()
        _enroll(course, count)
        with CaptureQueriesContext(connection) as queries:
            assert enrollments_expire(now=END).ended == count
        return len(queries)

    assert queries_to_expire(2) == queries_to_expire(12)


@pytest.mark.django_db
def test_chunks_take_every_due_row(monkeypatch):
    course = CourseFactory()
    _enroll(course, 7)
    run = enrollments_expire(now=END, chunk=3)
    assert run.ended == 7
    assert set(EnrollmentAudit.objects.values_list("operation_id", flat=True)) == {run.ended_operations[course.pk]}


@pytest.mark.django_db
def test_the_beat_task_ends_what_is_due_at_the_time_it_runs():
    course = CourseFactory()
    _enroll(course, 2)
    with time_machine.travel(END - SECOND, tick=False):
        assert expire_enrollments() == {"ended": 0, "renewed": 0}
    with time_machine.travel(END, tick=False):
        assert expire_enrollments() == {"ended": 2, "renewed": 0}


def test_the_beat_schedule_runs_expiry_and_reminders():
    from enrollment_site.celery import app

    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"enrollments.tasks.expire_enrollments", "enrollments.tasks.remind_expiring"} <= tasks


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_end_each_row_once_with_one_audit_row_and_one_email(monkeypatch):
    course = CourseFactory(display_name="Race 101")
    rows = _enroll(course, 40)
    # Small chunks, so that both runs are claiming while the other holds rows.
    runs = call_together([lambda: enrollments_expire(now=END, chunk=5), lambda: enrollments_expire(now=END, chunk=5)])
    assert all(isinstance(run, expiry.ExpiryRun) for run in runs), runs
    assert sum(run.ended for run in runs) == 40
    assert not Enrollment.objects.filter(is_active=True).exists()
    assert EnrollmentAudit.objects.count() == 40
    assert sorted(EnrollmentAudit.objects.values_list("user_id", flat=True)) == sorted(e.user_id for e in rows)
    # The runs' on-commit deliveries ran (eager): each learner got one email.
    assert sorted(m.to[0] for m in mail.outbox) == sorted(e.user.email for e in rows)
    assert Notification.objects.count() == 40


def test_months_are_calendar_months_ending_on_the_last_day_of_a_shorter_month():
    start = timezone.make_aware(datetime.datetime(2027, 1, 31, 23, 59))
    assert expiry.add_months(start, 1) == timezone.make_aware(datetime.datetime(2027, 2, 28, 23, 59))
    assert expiry.add_months(start, 13) == timezone.make_aware(datetime.datetime(2028, 2, 29, 23, 59))
    assert expiry.add_months(start, 12) == timezone.make_aware(datetime.datetime(2028, 1, 31, 23, 59))


def test_the_next_period_starts_at_the_old_end_or_skips_to_the_one_holding_now():
    end = timezone.make_aware(datetime.datetime(2026, 3, 1))
    assert expiry.next_period(access_until=end, months=12, now=end) == (end, end.replace(year=2027))
    late = end.replace(year=2027, month=5)
    assert expiry.next_period(access_until=end, months=6, now=late) == (end.replace(year=2027), end.replace(year=2027, month=9))


@pytest.mark.django_db
def test_one_courses_expiries_of_a_run_are_one_operation_its_team_can_undo(course, course_admin, other_course):
    from enrollments.services import undo_start

    mine = _enroll(course, 2)
    theirs = _enroll(other_course, 1)
    run = enrollments_expire(now=END)
    with time_machine.travel(END + datetime.timedelta(hours=1), tick=False):
        undo_start(course=course, operation_id=run.ended_operations[course.pk], actor=course_admin)
    assert set(Enrollment.objects.filter(is_active=True).values_list("id", flat=True)) == {e.pk for e in mine}
    assert not Enrollment.objects.get(pk=theirs[0].pk).is_active
    assert EnrollmentAudit.objects.filter(source=Source.UNDO, course=course).count() == 2
