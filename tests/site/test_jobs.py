"""The one job lifecycle (enrollment_site.lib.jobs): claim, progress, fail, and
the one stale sweep, over every job kind; no page or request sweeps."""

import datetime as dt
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from enrollment_site.celery import app, fail_stale_jobs
from enrollment_site.lib import jobs
from enrollment_site.lib.jobs import job_claim, job_fail, job_models, job_progress, jobs_fail_stale, stale_after
from enrollments.models import BatchJob, BulkEnrollJob
from organisations.models import OrgJob
from reports.models import ReportTask

pytestmark = pytest.mark.django_db

KINDS = {
    "batch": lambda course, **f: BatchJob.objects.create(course=course, action="enroll", total=10, **f),
    "bulk": lambda course, **f: BulkEnrollJob.objects.create(total=10, **f),
    "org": lambda course, **f: OrgJob.objects.create(kind=OrgJob.Kind.RULE, total=10, **f),
    "report": lambda course, **f: ReportTask.objects.create(course=course, kind=ReportTask.Kind.CODES, **f),
}


def test_every_job_kind_is_on_the_shared_model():
    assert {BatchJob, BulkEnrollJob, OrgJob, ReportTask} <= set(job_models())


def test_a_job_is_claimed_once(course):
    job = KINDS["batch"](course)
    assert job_claim(BatchJob, job.pk) is True
    assert job_claim(BatchJob, job.pk) is False
    job.refresh_from_db()
    assert job.status == "running" and job.heartbeat_at is not None


def test_a_claim_takes_over_a_stale_running_job_only_when_asked(course):
    old = timezone.now() - stale_after() - dt.timedelta(minutes=1)
    job = KINDS["batch"](course, status="running", started=old, heartbeat_at=old)
    assert job_claim(BatchJob, job.pk) is False
    assert job_claim(BatchJob, job.pk, stale_after=stale_after()) is True
    # now it beats again: nobody else takes it over
    assert job_claim(BatchJob, job.pk, stale_after=stale_after()) is False


def test_progress_writes_the_heartbeat(course):
    old = timezone.now() - dt.timedelta(minutes=10)
    job = KINDS["report"](course, status="running", started=old, heartbeat_at=old)
    job_progress(ReportTask, job.pk, done=3, total=9)
    job.refresh_from_db()
    assert (job.done, job.total) == (3, 9) and job.heartbeat_at > old


def test_fail_keeps_the_message(course):
    job = KINDS["org"](course, status="running")
    assert job_fail(OrgJob, job.pk, error="the rule is gone")
    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", "the rule is gone") and job.finished is not None


@pytest.mark.parametrize("kind", KINDS)
def test_the_sweep_fails_a_stale_job_and_spares_a_beating_one(course, kind):
    now = timezone.now()
    long_ago = now - dt.timedelta(hours=3)
    model = type(KINDS[kind](course, status="failed"))
    stale = KINDS[kind](course, status="running", started=long_ago, heartbeat_at=now - stale_after() - dt.timedelta(seconds=1))
    beating = KINDS[kind](course, status="running", started=long_ago, heartbeat_at=now - dt.timedelta(minutes=1)) if kind != "report" else None
    assert fail_stale_jobs() == 1
    stale.refresh_from_db()
    assert stale.status == "failed" and stale.error == model.ERROR_LOST
    if beating is not None:  # one pending report per course and kind
        beating.refresh_from_db()
        assert beating.status == "running"


def test_a_beating_report_is_spared(course):
    KINDS["report"](course, status="running", started=timezone.now() - dt.timedelta(hours=3), heartbeat_at=timezone.now())
    assert jobs_fail_stale(ReportTask) == 0


def test_the_sweep_is_run_by_beat():
    assert app.conf.beat_schedule["fail-stale-jobs"]["task"] == fail_stale_jobs.name


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
    with mock.patch.object(jobs, "jobs_fail_stale", side_effect=AssertionError("swept on GET")) as sweep:
        response = client_for(course_staff).get(reverse(name, args=args(course, job)))
    assert response.status_code == 200 and not sweep.called


def test_no_sweep_runs_when_polling_an_organisation_or_api_job(client_for, platform_admin):
    job = OrgJob.objects.create(kind=OrgJob.Kind.RULE, status="running", requester=platform_admin)
    with mock.patch.object(jobs, "jobs_fail_stale", side_effect=AssertionError("swept on GET")) as sweep:
        response = client_for(platform_admin).get(reverse("org_job_status", args=[job.public_id]))
    assert response.status_code == 200 and not sweep.called
