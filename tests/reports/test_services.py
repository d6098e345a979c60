"""Report services: rows and columns of each report, file names, CSV safety,
the claim, faults and the reaper."""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from enrollment_site.lib.jobs import jobs_sweep, max_takeovers, stale_after
from enrollments.models import Source
from reports import services
from reports.models import ReportTask
from reports.services import report_filename, report_request, report_run

from ..codes.factories import CodeBatchFactory, EnrollmentCodeFactory, RedemptionFactory
from ..factories import AllowanceFactory, CourseFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def read_csv(task: ReportTask) -> list[list[str]]:
    with default_storage.open(task.file.name, "rb") as f:
        return list(csv.reader(io.StringIO(f.read().decode("utf-8"))))


def produce(course, kind, requester=None) -> ReportTask:
    task, created = report_request(course=course, kind=kind, requester=requester)
    assert created
    done = report_run(task_id=task.pk)
    assert done is not None and done.status == ReportTask.Status.SUCCEEDED
    return done


# --- may_enroll --------------------------------------------------------------------


def test_may_enroll_lists_unused_allowances_of_the_course_only(course, other_course, course_staff):
    allowed_at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    AllowanceFactory(course=course, email="Waiting@Example.org", auto_enroll=True, created_by=course_staff, created=allowed_at)
    AllowanceFactory(course=course, email="manual@example.org", auto_enroll=False)
    AllowanceFactory(course=course, email="used@example.org", used_at=timezone.now())
    AllowanceFactory(course=other_course, email="elsewhere@example.org")

    task = produce(course, "may_enroll", requester=course_staff)

    rows = read_csv(task)
    assert rows[0] == ["course", "email", "auto_enroll", "allowed_by", "allowed_at"]
    assert rows[1:] == [
        ["Enrollment 101", "Waiting@Example.org", "true", "coursestaff", "2026-03-04 05:06:07"],
        ["Enrollment 101", "manual@example.org", "false", "", rows[2][4]],
    ]
    assert task.done == task.total == 2
    assert task.started and task.finished and task.heartbeat_at
    assert task.requester == course_staff


def test_report_with_no_rows_has_its_header(course):
    task = produce(course, "may_enroll")
    assert read_csv(task) == [["course", "email", "auto_enroll", "allowed_by", "allowed_at"]]
    assert task.total == 0 and task.percent == 100


# --- enrolled_profiles ------------------------------------------------------------


def test_enrolled_profiles_lists_active_enrollments_with_how_they_came_in(course, other_course):
    ada = UserFactory(username="ada", email="ada@example.org", first_name="Ada", last_name="Lovelace")
    bob = UserFactory(username="bob", email="bob@example.org", first_name="", last_name="")
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    EnrollmentFactory(course=course, user=ada, mode="verified", source=Source.CODE, created=when)
    EnrollmentFactory(course=course, user=bob, mode="audit", source=Source.SELF, created=when)
    EnrollmentFactory(course=course, is_active=False)
    EnrollmentFactory(course=other_course)

    rows = read_csv(produce(course, "enrolled_profiles"))

    assert rows == [
        ["course", "username", "name", "email", "mode", "enrolled_at", "enrolled_via", "access_from", "access_until", "status"],
        ["Enrollment 101", "ada", "Ada Lovelace", "ada@example.org", "verified", "2026-01-02 03:04:05", "Code", "", "", "active"],
        ["Enrollment 101", "bob", "", "bob@example.org", "audit", "2026-01-02 03:04:05", "Self", "", "", "active"],
    ]


def test_enrolled_profiles_gives_each_period_and_its_status(course):
    now = timezone.now()
    start, end = (now + timedelta(days=3)).replace(microsecond=0), (now + timedelta(days=30)).replace(microsecond=0)
    EnrollmentFactory(course=course, user=UserFactory(username="later"), access_from=start, access_until=end)
    EnrollmentFactory(course=course, user=UserFactory(username="lapsed"), access_until=now - timedelta(days=1))
    EnrollmentFactory(course=course, user=UserFactory(username="bounded"), access_until=end)
    rows = {row[1]: row[7:] for row in read_csv(produce(course, "enrolled_profiles"))[1:]}
    utc = lambda moment: moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")  # noqa: E731
    assert rows["later"] == [utc(start), utc(end), "upcoming"]
    assert rows["lapsed"][2] == "expired"  # ended, not yet ended by the expiry task
    assert rows["bounded"] == ["", utc(end), "active"]


@pytest.mark.parametrize("source", [s for s, _ in Source.choices])
def test_enrolled_profiles_names_every_source(course, source):
    EnrollmentFactory(course=course, source=source)
    rows = read_csv(produce(course, "enrolled_profiles"))
    assert rows[1][6] == Source(source).label


# --- codes -----------------------------------------------------------------------


def test_codes_report_lists_every_code_of_the_course_with_status_and_redemptions(course, other_course):
    batch = CodeBatchFactory(courses=[course], prefix="SPRING", max_uses=3)
    used = EnrollmentCodeFactory(batch=batch, code="SPRING-AAAA-BBBB-CCCC", max_uses=2, uses=2)
    RedemptionFactory(code=used)
    RedemptionFactory(code=used)
    EnrollmentCodeFactory(batch=batch, code="SPRING-DDDD-EEEE-FFFF", max_uses=None, expires_on=date(2019, 12, 31))
    EnrollmentCodeFactory(courses=[other_course], code="OTHER-AAAA-BBBB-CCCC")

    rows = read_csv(produce(course, "codes"))

    assert rows[0] == ["course", "code", "batch", "status", "uses", "max_uses", "expires_on", "redemptions", "created", "expiry_time_zone"]
    body = {row[1]: row for row in rows[1:]}
    assert set(body) == {"SPRING-AAAA-BBBB-CCCC", "SPRING-DDDD-EEEE-FFFF"}
    assert body["SPRING-AAAA-BBBB-CCCC"][2:8] == [f"{batch.pk} (SPRING)", "Used", "2", "2", "", "2"]
    assert body["SPRING-DDDD-EEEE-FFFF"][2:8] == [f"{batch.pk} (SPRING)", "Expired", "0", "unlimited", "2019-12-31", "0"]
    # the zone the expiry day ends in, only for a code that expires
    assert (body["SPRING-AAAA-BBBB-CCCC"][9], body["SPRING-DDDD-EEEE-FFFF"][9]) == ("", "UTC")


@pytest.mark.parametrize(("now", "status"), [((2026, 12, 31, 23, 59, 59), "Active"), ((2027, 1, 1, 0, 0, 0), "Expired")])
def test_codes_report_gives_the_expiry_date_and_status_in_the_site_time_zone(settings, course, now, status):
    settings.TIME_ZONE = "Europe/Amsterdam"
    EnrollmentCodeFactory(courses=[course], code="LAST-DAYS-DAYS-DAYS", expires_on=date(2026, 12, 31))
    with time_machine.travel(datetime(*now, tzinfo=timezone.get_default_timezone()), tick=False):
        rows = read_csv(produce(course, "codes"))
    assert rows[1][1] == "LAST-DAYS-DAYS-DAYS"
    assert (rows[1][3], rows[1][6], rows[1][9]) == (status, "2026-12-31", "Europe/Amsterdam")


# --- file names and CSV safety ----------------------------------------------------


def test_file_names_follow_the_org_course_kind_date_pattern(course):
    when = datetime(2026, 5, 6, 7, 8, tzinfo=UTC)
    assert report_filename(course=course, kind="may_enroll", when=when) == "Acme_ENR101_may_enroll_info_2026-05-06-0708.csv"
    assert report_filename(course=course, kind="enrolled_profiles", when=when) == "Acme_ENR101_enrolled_profiles_2026-05-06-0708.csv"
    assert report_filename(course=course, kind="codes", when=when) == "Acme_ENR101_codes_2026-05-06-0708.csv"


def test_file_name_parts_are_made_safe():
    course = CourseFactory(key="course-v1:Ac~me+C.S~1+2026")
    when = datetime(2026, 5, 6, 7, 8, tzinfo=UTC)
    assert report_filename(course=course, kind="codes", when=when) == "Ac-me_C.S-1_codes_2026-05-06-0708.csv"


def test_stored_file_has_the_report_name(course):
    task = produce(course, "may_enroll")
    assert task.filename.startswith("Acme_ENR101_may_enroll_info_")
    assert task.filename.endswith(".csv")
    assert default_storage.exists(task.file.name)


@pytest.mark.parametrize("hostile", ["=HYPERLINK(\"http://x\")", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1"])
def test_course_name_starting_with_a_formula_is_neutralised(hostile):
    course = CourseFactory(display_name=hostile)
    AllowanceFactory(course=course, email="a@example.org")
    rows = read_csv(produce(course, "may_enroll"))
    assert rows[1][0] == "'" + hostile


def test_allowance_email_starting_with_equals_is_neutralised(course):
    AllowanceFactory(course=course, email="=cmd@example.org")
    rows = read_csv(produce(course, "may_enroll"))
    assert rows[1][1] == "'=cmd@example.org"
    # Removing the guard gives the original back.
    assert rows[1][1][1:] == "=cmd@example.org"


def test_names_starting_with_a_formula_are_neutralised_in_profiles(course):
    EnrollmentFactory(course=course, user=UserFactory(username="eve", first_name="=2+5", last_name="x", email="eve@example.org"))
    rows = read_csv(produce(course, "enrolled_profiles"))
    assert rows[1][2] == "'=2+5 x"


# --- progress in chunks -----------------------------------------------------------


def test_progress_and_heartbeat_are_written_every_chunk_row_by_row(course, monkeypatch):
    # The row-by-row path (SQLite's); the COPY path's progress: tests/reports/test_copy.py.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(services, "by_copy", lambda: False)
    monkeypatch.setattr(services, "CHUNK_SIZE", 2)
    for i in range(5):
        AllowanceFactory(course=course, email=f"p{i}@example.org")
    task, _ = report_request(course=course, kind="may_enroll", requester=None)

    with CaptureQueriesContext(connection) as ctx:
        report_run(task_id=task.pk)

    progress = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith('UPDATE "reports_reporttask" SET "done"')]
    # the start (0 of 5: a report taken over starts from nothing), after 2 and after 4 rows; the last one is the final update
    assert len(progress) == 3 and '"done" = 0' in progress[0]
    assert all('"heartbeat_at"' in sql for sql in progress)
    task.refresh_from_db()
    assert (task.done, task.total) == (5, 5)


# --- one pending report per course and kind ---------------------------------------


def test_asking_twice_while_pending_gives_one_row(course, course_staff, course_admin):
    first, created = report_request(course=course, kind="may_enroll", requester=course_staff)
    again, created_again = report_request(course=course, kind="may_enroll", requester=course_admin)
    assert created and not created_again
    assert again.pk == first.pk
    assert ReportTask.objects.filter(course=course, kind="may_enroll").count() == 1


def test_another_kind_or_course_is_not_blocked(course, other_course):
    report_request(course=course, kind="may_enroll", requester=None)
    assert report_request(course=course, kind="codes", requester=None).created
    assert report_request(course=other_course, kind="may_enroll", requester=None).created


def test_asking_again_after_the_report_finished_starts_a_new_one(course):
    first = produce(course, "may_enroll")
    second, created = report_request(course=course, kind="may_enroll", requester=None)
    assert created and second.pk != first.pk


def test_the_database_refuses_a_second_pending_row(course):
    ReportTask.objects.create(course=course, kind="codes", status="running")
    with pytest.raises(IntegrityError), transaction.atomic():
        ReportTask.objects.create(course=course, kind="codes")


def test_unknown_kind_is_refused(course):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        report_request(course=course, kind="everything", requester=None)


def test_request_is_enqueued_after_commit(course, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr("reports.tasks.run_report.apply_async", lambda args, kwargs, retry: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        task, _ = report_request(course=course, kind="codes", requester=None)
        assert sent == []
    assert len(callbacks) == 1
    assert sent == [(task.pk,)]


def test_eager_mode_produces_the_report_in_process(course, django_capture_on_commit_callbacks):
    # The embedded default (no broker): the task runs in-process on commit.
    AllowanceFactory(course=course, email="eager@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        task, _ = report_request(course=course, kind="may_enroll", requester=None)
    task.refresh_from_db()
    assert task.status == ReportTask.Status.SUCCEEDED
    assert task.celery_task_id
    assert read_csv(task)[1][1] == "eager@example.org"


# --- the claim ---------------------------------------------------------------------


def test_a_second_delivery_does_nothing(course):
    task = produce(course, "may_enroll")
    assert report_run(task_id=task.pk) is None
    task.refresh_from_db()
    assert task.status == ReportTask.Status.SUCCEEDED
    assert len(default_storage.listdir(f"reports/{course.pk}")[1]) == 1


def test_a_running_task_is_not_taken_twice(course):
    task = ReportTask.objects.create(course=course, kind="may_enroll", status="running", heartbeat_at=timezone.now())
    assert report_run(task_id=task.pk) is None
    task.refresh_from_db()
    assert task.status == "running"


# --- faults ------------------------------------------------------------------------


def test_a_task_that_raises_ends_failed_with_its_message(course, monkeypatch):
    def broken(course):
        yield ["row"]
        raise RuntimeError("the disk is full")

    import dataclasses

    def broken_cells(course):
        raise RuntimeError("the disk is full")

    # rows: the row-by-row path (SQLite); cells: the COPY path (PostgreSQL, see also test_copy.py)
    spec = dataclasses.replace(services.REPORTS["may_enroll"], rows=broken, cells=broken_cells)
    monkeypatch.setitem(services.REPORTS, "may_enroll", spec)
    task, _ = report_request(course=course, kind="may_enroll", requester=None)

    with pytest.raises(RuntimeError, match="the disk is full"):
        report_run(task_id=task.pk)

    task.refresh_from_db()
    assert task.status == ReportTask.Status.FAILED
    assert task.error == "the disk is full"
    assert task.finished is not None
    assert not task.file
    # A failed report no longer blocks asking again.
    assert report_request(course=course, kind="may_enroll", requester=None).created


def test_a_stale_running_task_is_taken_over_and_one_lost_again_and_again_ends_failed(course):
    old = timezone.now() - stale_after() - timedelta(seconds=1)
    stale = ReportTask.objects.create(course=course, kind="may_enroll", status="running", started=old, heartbeat_at=old)
    alive = ReportTask.objects.create(course=course, kind="codes", status="running", started=old, heartbeat_at=timezone.now())
    spent = ReportTask.objects.create(course=course, kind="enrolled_profiles", status="running", started=old, heartbeat_at=old, takeovers=max_takeovers())

    assert jobs_sweep(ReportTask) == 2

    stale.refresh_from_db()
    alive.refresh_from_db()
    spent.refresh_from_db()
    assert (stale.status, stale.takeovers) == ("queued", 1)
    assert (spent.status, spent.error) == ("failed", "worker lost again and again")
    assert spent.finished is not None
    assert alive.status == "running"


def test_queued_too_long_ends_failed_as_never_started(course):
    old = ReportTask.objects.create(course=course, kind="may_enroll", created=timezone.now() - ReportTask.queued_timeout - timedelta(minutes=1))
    fresh = ReportTask.objects.create(course=course, kind="codes")
    jobs_sweep(ReportTask)
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert (old.status, old.error) == ("failed", "never started")
    assert fresh.status == "queued"


def test_asking_again_for_a_report_whose_worker_died_takes_it_over_at_once(course, django_capture_on_commit_callbacks):
    old = timezone.now() - stale_after() - timedelta(minutes=1)
    dead = ReportTask.objects.create(course=course, kind="may_enroll", status="running", started=old, heartbeat_at=old, done=4000, total=100_001)
    with django_capture_on_commit_callbacks() as callbacks:
        task, created = report_request(course=course, kind="may_enroll", requester=None)
    # The request is answered with the same report, sent again to be produced from the start.
    assert not created and task.pk == dead.pk
    assert (task.status, task.takeovers) == ("queued", 1)
    assert [(cb.args[0].name, cb.args[1]) for cb in callbacks] == [("reports.tasks.run_report", (dead.pk,))]


def test_a_report_taken_over_is_produced_again_from_the_start(course):
    AllowanceFactory(course=course, email="again@example.org")
    old = timezone.now() - stale_after() - timedelta(minutes=1)
    dead = ReportTask.objects.create(course=course, kind="may_enroll", status="running", started=old, heartbeat_at=old, done=4000, total=100_001)
    task = report_run(task_id=dead.pk)  # the redelivered message of the dead worker
    assert (task.status, task.takeovers, task.done, task.total) == ("succeeded", 1, 1, 1)
    assert read_csv(task)[1][1] == "again@example.org"


def test_soft_time_limit_marks_the_task_timed_out(course, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    from reports.tasks import run_report

    def too_slow(*, task_id, celery_task_id=""):
        ReportTask.objects.filter(pk=task_id).update(status="running")
        services.report_fail(task_id=task_id, error="SoftTimeLimitExceeded")
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(services, "report_run", too_slow)
    task = ReportTask.objects.create(course=course, kind="codes")
    with pytest.raises(SoftTimeLimitExceeded):
        run_report.apply(args=(task.pk,), throw=True)
    task.refresh_from_db()
    assert (task.status, task.error) == ("failed", "timed out")


def test_transient_database_error_is_retried(course, monkeypatch):
    from django.db import OperationalError

    from reports.tasks import run_report

    AllowanceFactory(course=course, email="retry@example.org")
    real_run = services.report_run
    calls = []

    def flaky(*, task_id, celery_task_id=""):
        calls.append(task_id)
        if len(calls) == 1:
            return real_run_failing(task_id)
        return real_run(task_id=task_id, celery_task_id=celery_task_id)

    def real_run_failing(task_id):
        ReportTask.objects.filter(pk=task_id).update(status="running")
        services.report_fail(task_id=task_id, error="connection reset")
        raise OperationalError("connection reset")

    monkeypatch.setattr(services, "report_run", flaky)
    task = ReportTask.objects.create(course=course, kind="may_enroll")

    run_report.apply(args=(task.pk,), throw=False)

    task.refresh_from_db()
    assert len(calls) == 2
    assert (task.status, task.error) == ("succeeded", "")
    assert read_csv(task)[1][1] == "retry@example.org"


def test_the_job_sweep_is_not_routed_to_the_reports_queue():
    from enrollment_site.celery import app

    assert app.amqp.router.route({}, "enrollment_site.sweep_jobs")["queue"].name == "default"
    assert app.amqp.router.route({}, "reports.tasks.run_report")["queue"].name == "reports"
    assert app.conf.beat_schedule["sweep-jobs"]["task"] == "enrollment_site.sweep_jobs"
