"""A batch or an API bulk job whose worker dies mid-chunk is taken over (the
sweep sends it again once its heartbeat is stale) and resumed after its last
committed chunk: everyone is enrolled, audited and mailed exactly once, and
the results cover every identifier, in order, as if nothing had happened.

The worker's death is a ``BaseException`` raised in the middle of a chunk,
after its first writes: nothing of the runner's own error handling runs, as
with SIGKILL (``tests/site/test_worker_kill.py`` kills a real one)."""

import csv
import io
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from enrollment_site.celery import sweep_jobs
from enrollment_site.lib.jobs import stale_after
from enrollments.models import BatchJob, BatchJobChunk, BulkEnrollJob, BulkEnrollJobChunk, Enrollment, EnrollmentAudit, Notification
from enrollments.services import batch, bulk_api, jobs
from enrollments.services.jobs import batch_job_create
from enrollments.tasks import run_batch_job, run_bulk_enroll_job

from ..factories import CourseFactory, CourseRoleFactory, UserFactory

pytestmark = pytest.mark.django_db


class WorkerKilled(BaseException):
    """The worker process dies here: no except clause, no finally of the runner's own matters."""


def dies_in_chunk(monkeypatch, module, number: int) -> None:
    """``module``'s batch update dies in its ``number``-th call, after writing
    (its audit entries and outbox rows are in the open transaction)."""
    real = batch.enrollment_batch_update
    calls = []

    def update(**kwargs):
        calls.append(1)
        result = real(**kwargs)
        if len(calls) == number:
            raise WorkerKilled
        return result

    monkeypatch.setattr(module, "enrollment_batch_update", update)


def stale(model, job) -> None:
    """The dead worker's heartbeat gets old, as it does JOBS_STALE_AFTER later."""
    model.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - stale_after() - timedelta(seconds=1))


def once_each(queryset, field: str) -> Counter:
    counts = Counter(queryset.values_list(field, flat=True))
    assert set(counts.values()) == {1}, counts
    return counts


def test_a_batch_whose_worker_died_resumes_after_its_last_committed_chunk(monkeypatch, django_capture_on_commit_callbacks, mailoutbox):
    course = CourseFactory()
    users = [UserFactory(username=f"taken{i}") for i in range(6)]
    emails = [f"new{i}@example.org" for i in range(5)]
    # The last line names taken0 again (by email), four chunks after the first: "named twice" across the takeover.
    identifiers = [u.username for u in users] + emails + [users[0].email]
    monkeypatch.setattr(jobs, "BATCH_CHUNK", 3)
    with django_capture_on_commit_callbacks(execute=True):
        job = batch_job_create(course=course, identifiers=identifiers, action="enroll", auto_enroll=True, email_students=True,
                               actor=None, reason="takeover")
        dies_in_chunk(monkeypatch, jobs, 3)  # the run dies in its third chunk (lines 7 to 9)
        with pytest.raises(WorkerKilled):
            run_batch_job.delay(job.pk)
    job.refresh_from_db()
    assert (job.status, job.position, job.done) == ("running", 6, 6)
    assert Enrollment.objects.filter(course=course).count() == 6 and not job.results_file
    assert len(mailoutbox) == 6  # the two committed chunks' emails, sent after commit

    monkeypatch.setattr(jobs, "enrollment_batch_update", batch.enrollment_batch_update)  # a fresh worker
    stale(BatchJob, job)
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_jobs() == 1  # sent again, and (eagerly) run to the end

    job.refresh_from_db()
    assert (job.status, job.takeovers, job.done, job.total, job.error) == ("succeeded", 1, 12, 12, "")
    assert job.summary == {"enrolled": 6, "allowed_auto": 5, "duplicate": 1}
    # Nobody enrolled, audited or mailed twice, nobody left out.
    assert sorted(once_each(Enrollment.objects.filter(course=course, is_active=True), "user__username")) == sorted(u.username for u in users)
    assert len(once_each(EnrollmentAudit.objects.filter(course=course), "identifier")) == 11
    assert sorted(once_each(Notification.objects.filter(course=course), "recipient")) == sorted([u.email for u in users] + emails)
    assert sorted(m.to[0] for m in mailoutbox) == sorted([u.email for u in users] + emails)
    # One operation across both runs.
    assert set(EnrollmentAudit.objects.filter(course=course).values_list("operation_id", flat=True)) == {job.public_id}
    # The results file has every line once, in the order given.
    with job.results_file.open("rb") as f:
        rows = list(csv.reader(io.StringIO(f.read().decode("utf-8"))))
    assert [row[0] for row in rows[1:]] == identifiers
    assert rows[-1][1] == "named twice" and "taken0" in rows[-1][-1]
    assert not BatchJobChunk.objects.exists()  # the chunks' rows go once the file is written


def test_a_redelivered_batch_task_takes_over_only_once_the_heartbeat_is_stale(monkeypatch, django_capture_on_commit_callbacks):
    course = CourseFactory()
    monkeypatch.setattr(jobs, "BATCH_CHUNK", 2)
    with django_capture_on_commit_callbacks(execute=True):
        job = batch_job_create(course=course, identifiers=[f"p{i}@example.org" for i in range(6)], action="enroll",
                               auto_enroll=True, email_students=False, actor=None)
        dies_in_chunk(monkeypatch, jobs, 2)
        with pytest.raises(WorkerKilled):
            run_batch_job.delay(job.pk)
    monkeypatch.setattr(jobs, "enrollment_batch_update", batch.enrollment_batch_update)

    # Delivered again at once (the worker's child died): the heartbeat is fresh, so it may still be alive.
    assert run_batch_job.delay(job.pk).get() == "already taken"
    stale(BatchJob, job)
    assert run_batch_job.delay(job.pk).get() == "succeeded"
    job.refresh_from_db()
    assert (job.takeovers, job.summary) == (1, {"allowed_auto": 6})
    assert len(once_each(EnrollmentAudit.objects.filter(course=course), "identifier")) == 6


def test_an_api_bulk_job_whose_worker_died_resumes_in_the_course_it_was_in(monkeypatch, django_capture_on_commit_callbacks):
    first, second = CourseFactory(key="course-v1:Acme+ONE+2026"), CourseFactory(key="course-v1:Acme+TWO+2026")
    staff = UserFactory()
    for course in (first, second):
        CourseRoleFactory(course=course, user=staff, role="staff")
    people = [UserFactory(username=f"bulk{i}") for i in range(6)]
    identifiers = [p.username for p in people]
    monkeypatch.setattr(bulk_api, "BATCH_CHUNK", 4)
    with django_capture_on_commit_callbacks(execute=True):
        job = bulk_api.bulk_enroll_job_create(requester=staff, courses=[first, second], identifiers=identifiers, action="enroll",
                                              auto_enroll=False, email_students=True, cohorts=["", "Blue"], create_cohorts=True)
        dies_in_chunk(monkeypatch, bulk_api, 3)  # the first chunk of the second course
        with pytest.raises(WorkerKilled):
            run_bulk_enroll_job.delay(job.pk)
    job.refresh_from_db()
    assert (job.status, job.position) == ("running", 6)

    monkeypatch.setattr(bulk_api, "enrollment_batch_update", batch.enrollment_batch_update)
    stale(BulkEnrollJob, job)
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_jobs() == 1

    job.refresh_from_db()
    assert (job.status, job.takeovers, job.done) == ("succeeded", 1, 12)
    for course in (first, second):
        answer = job.result["courses"][course.key]["results"]
        assert [r["identifier"] for r in answer] == identifiers
        assert {r["after"]["enrollment"] for r in answer} == {True}
        assert len(once_each(Enrollment.objects.filter(course=course), "user_id")) == 6
        assert len(once_each(EnrollmentAudit.objects.filter(course=course, cohort_after=""), "user_id")) == 6
        assert len(once_each(Notification.objects.filter(course=course), "recipient")) == 6
    assert second.cohorts.get(name="Blue").memberships.count() == 6
    # each move to the cohort audited once too
    assert len(once_each(EnrollmentAudit.objects.filter(course=second, cohort_after="Blue"), "user_id")) == 6
    assert not EnrollmentAudit.objects.filter(course=first).exclude(cohort_after="").exists()
    assert not BulkEnrollJobChunk.objects.exists()
