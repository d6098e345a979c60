"""A real worker killed (SIGKILL) in the middle of a batch job and of a report,
then a fresh worker started: the sweep takes each job over once its heartbeat
is stale, and both finish correctly. The batch resumes after its last
committed chunk (each person enrolled, audited and mailed once, the results
file complete); the report is produced again from the start (one file, every
row).

The test holds the job's row lock while it kills the worker, so the worker is
stopped at a known point: waiting to commit its next chunk (or progress), with
some of the job done and the rest not."""

import csv
import io
import signal
from collections import Counter
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.db import connection, transaction

from enrollment_site.lib.jobs import jobs_sweep
from enrollments.models import Allowance, BatchJob, Enrollment, EnrollmentAudit, Notification
from enrollments.services.jobs import batch_job_create
from enrollments.tasks import sweep_notifications
from reports.models import ReportTask
from reports.services import report_request
from tests.celery_worker import celery_worker  # noqa: F401

from ..factories import CourseFactory, UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

STALE = "2"  # seconds: the worker beats every third of a second
TIMEOUT = 90
ROWS = 100_001


def kill_while_holding(worker, model, job, *, before) -> None:
    """Lock ``job``'s row (the worker's next commit waits on it), check that
    the job is ``before`` its end, SIGKILL the worker, and let go."""
    with transaction.atomic():
        locked = model.objects.select_for_update().get(pk=job.pk)
        assert locked.status == "running" and before(locked), (locked.status, locked.done, locked.total)
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(timeout=10)


def take_over(worker, model, job) -> None:
    """A fresh worker; the sweep (beat's, run here) takes the job over once its heartbeat is stale."""
    worker.start_again()
    worker.wait_for(lambda: jobs_sweep(model, pk=job.pk), timeout=TIMEOUT, interval=0.5, what="the sweep to take the job over")


@pytest.mark.worker_env(JOBS_STALE_AFTER_SECONDS=STALE, ENROLLMENT_JOB_CHUNK="10")
def test_a_batch_killed_mid_job_resumes_on_a_fresh_worker_and_does_everything_once(celery_worker, settings):  # noqa: F811
    settings.JOBS_STALE_AFTER = timedelta(seconds=int(STALE))
    course = CourseFactory(display_name="Killed Batch 101")
    users = [UserFactory(username=f"killed{i}") for i in range(100)]
    emails = [f"invited{i}@example.org" for i in range(100)]
    identifiers = [x for pair in zip((u.username for u in users), emails, strict=True) for x in pair]  # 200 lines, 20 chunks
    job = batch_job_create(course=course, identifiers=identifiers, action="enroll", auto_enroll=True, email_students=True,
                           actor=None, reason="crash test")

    celery_worker.wait_for(lambda: BatchJob.objects.get(pk=job.pk).position >= 20, timeout=TIMEOUT, interval=0.01, what="two chunks")
    kill_while_holding(celery_worker, BatchJob, job, before=lambda j: 20 <= j.position < 200)
    killed_at = BatchJob.objects.get(pk=job.pk).position
    assert killed_at < 200 and Enrollment.objects.filter(course=course).count() < 100

    take_over(celery_worker, BatchJob, job)
    celery_worker.wait_for(lambda: BatchJob.objects.get(pk=job.pk).status == "succeeded", timeout=TIMEOUT, what="the batch to finish")
    # What beat's outbox sweep does every minute: deliver what a dead worker had reserved.
    sweep_notifications.delay()
    celery_worker.wait_for(
        lambda: Notification.objects.filter(course=course, status=Notification.Status.SENT).count() == 200, timeout=TIMEOUT, what="every email"
    )

    job.refresh_from_db()
    assert (job.takeovers, job.done, job.total, job.error) == (1, 200, 200, "")
    assert job.summary == {"enrolled": 100, "allowed_auto": 100}
    enrolled = Counter(Enrollment.objects.filter(course=course, is_active=True).values_list("user_id", flat=True))
    assert sorted(enrolled) == sorted(u.pk for u in users) and set(enrolled.values()) == {1}
    assert Allowance.objects.filter(course=course).count() == 100
    audited = Counter(EnrollmentAudit.objects.filter(course=course).values_list("identifier", flat=True))
    assert sorted(audited) == sorted(identifiers) and set(audited.values()) == {1}
    mailed = Counter(e["to"] for e in celery_worker.emails())
    assert sorted(mailed) == sorted([u.email for u in users] + emails) and set(mailed.values()) == {1}
    with job.results_file.open("rb") as f:
        rows = list(csv.reader(io.StringIO(f.read().decode("utf-8"))))
    assert [row[0] for row in rows[1:]] == identifiers


@pytest.mark.worker_env(JOBS_STALE_AFTER_SECONDS=STALE)
def test_a_report_killed_mid_job_is_produced_again_on_a_fresh_worker(celery_worker, settings):  # noqa: F811
    settings.JOBS_STALE_AFTER = timedelta(seconds=int(STALE))
    course = CourseFactory(display_name="Killed Report 101")
    with connection.cursor() as cursor:  # 100,001 rows in one statement
        cursor.execute(
            "INSERT INTO enrollments_allowance (course_id, email, email_key, auto_enroll, created)"
            " SELECT %s, 'row' || i || '@example.org', 'row' || i || '@example.org', false, now() FROM generate_series(1, %s) AS i",
            [course.pk, ROWS],
        )
    task, _ = report_request(course=course, kind="may_enroll", requester=None)

    # The report records progress every 2,000 rows: kill it past the first, long before the end.
    celery_worker.wait_for(lambda: ReportTask.objects.get(pk=task.pk).done >= 2000, timeout=TIMEOUT, interval=0.01, what="the first 2,000 rows")
    kill_while_holding(celery_worker, ReportTask, task, before=lambda t: 2000 <= t.done < ROWS)
    assert not default_storage.exists(f"reports/{course.pk}")

    take_over(celery_worker, ReportTask, task)
    celery_worker.wait_for(lambda: ReportTask.objects.get(pk=task.pk).status == "succeeded", timeout=TIMEOUT, what="the report to finish")

    task.refresh_from_db()
    assert (task.takeovers, task.done, task.total, task.error) == (1, ROWS, ROWS, "")
    assert len(default_storage.listdir(f"reports/{course.pk}")[1]) == 1
    with default_storage.open(task.file.name, "rb") as f:
        rows = list(csv.reader(io.StringIO(f.read().decode("utf-8"))))
    assert sorted(row[1] for row in rows[1:]) == sorted(f"row{i}@example.org" for i in range(1, ROWS + 1))
