"""The one job lifecycle (enrollment_site.lib.jobs): claim, takeover of a job
whose worker died, chunks committed with the position, progress, fail, and
the one sweep over every job kind; no page or request sweeps."""

import datetime as dt
import threading
import time
from importlib import import_module
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from enrollment_site.celery import app, sweep_jobs
from enrollment_site.lib import jobs
from enrollment_site.lib.jobs import (
    JobLost,
    job_chunk,
    job_chunks,
    job_claim,
    job_fail,
    job_finish,
    job_heartbeat,
    job_models,
    job_progress,
    jobs_sweep,
    max_takeovers,
    stale_after,
)
from enrollments.models import BatchJob, BatchJobChunk, BulkEnrollJob
from organisations.models import OrgJob
from reports.models import ReportTask

pytestmark = pytest.mark.django_db

KINDS = {
    "batch": lambda course, **f: BatchJob.objects.create(course=course, action="enroll", total=10, **f),
    "bulk": lambda course, **f: BulkEnrollJob.objects.create(total=10, **f),
    "org": lambda course, **f: OrgJob.objects.create(kind=OrgJob.Kind.RULE, total=10, **f),
    "report": lambda course, **f: ReportTask.objects.create(course=course, kind=ReportTask.Kind.CODES, **f),
}


def ago(**delta):
    return timezone.now() - dt.timedelta(**delta)


def stale():
    return timezone.now() - stale_after() - dt.timedelta(seconds=1)


def test_every_job_kind_is_on_the_shared_model_and_names_its_task():
    assert {BatchJob, BulkEnrollJob, OrgJob, ReportTask} <= set(job_models())
    for model in job_models():
        module, _, name = model.task_name.rpartition(".")
        assert getattr(import_module(module), name).name == model.task_name


def test_the_takeover_threshold_is_a_few_heartbeats():
    # Issue 13: a dead worker's job was reaped after 32 minutes.
    assert django_settings.JOBS_STALE_AFTER <= dt.timedelta(minutes=2)
    assert jobs.heartbeat_every() * 5 <= stale_after().total_seconds()
    assert max_takeovers() == 3


def test_a_job_is_claimed_once(course):
    job = KINDS["batch"](course)
    run = job_claim(BatchJob, job.pk)
    assert run is not None and (run.position, run.takeovers, run.resumed) == (0, 0, False)
    assert job_claim(BatchJob, job.pk) is None
    job.refresh_from_db()
    assert job.status == "running" and job.heartbeat_at is not None and job.claim == run.token


def test_a_claim_takes_over_a_stale_running_job_and_resumes_from_its_position(course):
    started = ago(hours=1)
    job = KINDS["batch"](course, status="running", started=started, heartbeat_at=stale(), position=4, done=4)
    run = job_claim(BatchJob, job.pk)
    assert run is not None and (run.position, run.takeovers, run.resumed) == (4, 1, True)
    job.refresh_from_db()
    assert (job.status, job.takeovers, job.started) == ("running", 1, started)
    # now it beats again: nobody else takes it over
    assert job_claim(BatchJob, job.pk) is None


def test_a_claim_leaves_a_beating_job_alone(course):
    job = KINDS["batch"](course, status="running", started=ago(hours=1), heartbeat_at=ago(seconds=30))
    assert job_claim(BatchJob, job.pk) is None
    job.refresh_from_db()
    assert job.takeovers == 0


def test_a_job_taken_over_too_often_fails_with_a_clear_message(course):
    job = KINDS["batch"](course, status="running", heartbeat_at=stale(), takeovers=max_takeovers())
    assert job_claim(BatchJob, job.pk) is None
    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", BatchJob.ERROR_LOST)
    assert "stopped" in job.error and job.finished is not None


def test_a_chunk_commits_its_writes_with_the_position(course):
    run = job_claim(BatchJob, KINDS["batch"](course).pk)
    with job_chunk(run, store=BatchJobChunk) as record:
        record.record(advance=3, data={"rows": [1, 2, 3]}, summary={"enrolled": 3})
    with pytest.raises(RuntimeError), job_chunk(run, store=BatchJobChunk) as record:
        BatchJob.objects.filter(pk=run.pk).update(reason="written by the chunk")
        record.record(advance=3, data={"rows": [4, 5, 6]})
        raise RuntimeError("the worker failed mid-chunk")
    job = BatchJob.objects.get(pk=run.pk)
    assert (job.position, job.done, job.summary, job.reason) == (3, 3, {"enrolled": 3}, "")
    assert run.position == 3
    assert list(job_chunks(BatchJobChunk, run)) == [{"rows": [1, 2, 3]}]


def test_a_run_that_lost_its_job_writes_nothing_more(course):
    job = KINDS["batch"](course)
    dead = job_claim(BatchJob, job.pk)
    BatchJob.objects.filter(pk=job.pk).update(heartbeat_at=stale())  # it stopped beating: thought dead
    successor = job_claim(BatchJob, job.pk)
    assert successor is not None and successor.token != dead.token

    with pytest.raises(JobLost), job_chunk(dead, store=BatchJobChunk) as record:
        record.record(advance=5, data={"rows": []})
    job_progress(dead, done=9)
    assert job_finish(dead, summary={"enrolled": 1}) is False
    assert job_fail(BatchJob, job.pk, error="the dead run failed", run=dead) is False
    job.refresh_from_db()
    assert (job.status, job.position, job.done, job.summary, job.error) == ("running", 0, 0, {}, "")
    assert not BatchJobChunk.objects.exists()

    assert job_finish(successor, store=BatchJobChunk, summary={"enrolled": 1})
    job.refresh_from_db()
    assert (job.status, job.claim) == ("succeeded", None)


def test_progress_writes_the_heartbeat(course):
    job = KINDS["report"](course)
    run = job_claim(ReportTask, job.pk)
    ReportTask.objects.filter(pk=job.pk).update(heartbeat_at=ago(minutes=10))
    job_progress(run, done=3, total=9)
    job.refresh_from_db()
    assert (job.done, job.total) == (3, 9) and job.heartbeat_at > ago(minutes=1)


def test_fail_keeps_the_message(course):
    job = KINDS["org"](course, status="running")
    assert job_fail(OrgJob, job.pk, error="the rule is gone")
    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", "the rule is gone") and job.finished is not None


def sent(callbacks):
    """(task name, job id) of every task the captured on-commit callbacks send."""
    return sorted((cb.args[0].name, cb.args[1][0]) for cb in callbacks)


@pytest.mark.parametrize("kind", KINDS)
def test_the_sweep_takes_over_a_stale_job_and_spares_a_beating_one(course, kind, django_capture_on_commit_callbacks):
    model = type(KINDS[kind](course, status="failed"))
    lost = KINDS[kind](course, status="running", started=ago(hours=3), heartbeat_at=stale(), position=4, done=4)
    beating = KINDS[kind](course, status="running", started=ago(hours=3), heartbeat_at=ago(seconds=30)) if kind != "report" else None
    with django_capture_on_commit_callbacks() as callbacks:
        assert sweep_jobs() == 1
    lost.refresh_from_db()
    # Back in the queue, sent again, its position kept for the run that resumes it.
    assert (lost.status, lost.takeovers, lost.position, lost.claim, lost.error) == ("queued", 1, 4, None, "")
    assert sent(callbacks) == [(model.task_name, lost.pk)]
    if beating is not None:  # one pending report per course and kind
        beating.refresh_from_db()
        assert (beating.status, beating.takeovers) == ("running", 0)


def test_the_sweep_sends_again_a_job_queued_while_the_broker_was_down(course, django_capture_on_commit_callbacks):
    never_sent = KINDS["batch"](course, created=stale())
    just_queued = KINDS["batch"](course)
    with django_capture_on_commit_callbacks() as callbacks:
        assert jobs_sweep(BatchJob) == 1
    assert sent(callbacks) == [(BatchJob.task_name, never_sent.pk)]
    never_sent.refresh_from_db()
    # Sent now: not again before another stale_after(), and not a takeover.
    assert (never_sent.status, never_sent.takeovers) == ("queued", 0) and never_sent.heartbeat_at > ago(minutes=1)
    with django_capture_on_commit_callbacks() as callbacks:
        assert jobs_sweep(BatchJob) == 0
    assert callbacks == [] and just_queued.status == "queued"


def test_a_job_queued_past_its_kinds_timeout_fails_as_never_started(course):
    old = KINDS["batch"](course, created=ago(hours=7))
    assert jobs_sweep(BatchJob) == 1
    old.refresh_from_db()
    assert (old.status, old.error) == ("failed", BatchJob.ERROR_NEVER_STARTED)


def test_the_sweep_fails_a_job_taken_over_too_often_instead_of_looping(course, django_capture_on_commit_callbacks):
    spent = KINDS["org"](course, status="running", started=ago(hours=1), heartbeat_at=stale(), takeovers=max_takeovers())
    # taken over before, sent again, and no worker took it
    requeued = KINDS["batch"](course, status="queued", started=ago(hours=1), heartbeat_at=stale(), takeovers=max_takeovers())
    with django_capture_on_commit_callbacks() as callbacks:
        assert sweep_jobs() == 2
    assert callbacks == []
    for job in (spent, requeued):
        job.refresh_from_db()
        assert (job.status, job.error) == ("failed", type(job).ERROR_LOST)


def test_the_sweep_is_run_by_beat_every_minute():
    assert app.conf.beat_schedule["sweep-jobs"] == {"task": sweep_jobs.name, "schedule": 60.0}


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_running_job_beats_from_its_own_thread_while_a_chunk_takes_long(course, settings):
    settings.JOBS_STALE_AFTER = dt.timedelta(seconds=0.6)  # a beat every 0.1 s
    job = KINDS["batch"](course)
    run = job_claim(BatchJob, job.pk)
    BatchJob.objects.filter(pk=job.pk).update(heartbeat_at=ago(hours=1))
    threads = threading.active_count()
    with job_heartbeat(run):
        deadline = time.monotonic() + 30
        while BatchJob.objects.get(pk=job.pk).heartbeat_at < ago(minutes=1):  # the main thread does no progress at all
            assert time.monotonic() < deadline, "no heartbeat came"
            time.sleep(0.05)
    assert threading.active_count() == threads  # the thread ended with the block
    BatchJob.objects.filter(pk=job.pk).update(heartbeat_at=ago(hours=1))
    time.sleep(0.3)  # three beats' time: none comes once the run is over
    assert BatchJob.objects.get(pk=job.pk).heartbeat_at < ago(minutes=1)
    connections.close_all()


@pytest.mark.parametrize(
    "name, args",
    [
        ("instructor_data", lambda course, job: [course.key]),
        ("report_tasks", lambda course, job: [course.key]),
        ("batch_job_status", lambda course, job: [course.key, job.public_id]),
    ],
)
def test_no_sweep_runs_on_get(client_for, course, course_staff, name, args):
    job = KINDS["batch"](course, status="running", requester=course_staff)
    with mock.patch.object(jobs, "jobs_sweep", side_effect=AssertionError("swept on GET")) as sweep:
        response = client_for(course_staff).get(reverse(name, args=args(course, job)))
    assert response.status_code == 200 and not sweep.called


def test_no_sweep_runs_when_polling_an_organisation_or_api_job(client_for, platform_admin):
    job = OrgJob.objects.create(kind=OrgJob.Kind.RULE, status="running", requester=platform_admin)
    with mock.patch.object(jobs, "jobs_sweep", side_effect=AssertionError("swept on GET")) as sweep:
        response = client_for(platform_admin).get(reverse("org_job_status", args=[job.public_id]))
    assert response.status_code == 200 and not sweep.called
