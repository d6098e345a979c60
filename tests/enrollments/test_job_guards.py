"""What guards the batch and API bulk jobs: the sweep takes over only jobs
that stopped beating, and a job's status is seen only by those it belongs to
(a batch by its course's team, an API job by its requester or a platform admin).

Each test here fails when the line it guards is removed (a sweep that fails
every running job, a job fetch without its course or requester)."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from enrollment_site.lib.jobs import jobs_sweep
from enrollments.models import BatchJob, BulkEnrollJob

pytestmark = pytest.mark.django_db

RUNNING, QUEUED, FAILED = "running", "queued", "failed"


def _jobs(create) -> dict[str, object]:
    """One job of each kind the sweep must tell apart, all running or queued."""
    now = timezone.now()
    long_ago = now - dt.timedelta(hours=3)
    return {
        # started long ago but beat a minute ago: a long, healthy job
        "beating": create(status=RUNNING, started=long_ago, heartbeat_at=now - dt.timedelta(minutes=1)),
        "just_started": create(status=RUNNING, started=now, heartbeat_at=now),
        "lost": create(status=RUNNING, started=long_ago, heartbeat_at=now - dt.timedelta(hours=1)),
        "waiting": create(status=QUEUED, created=now - dt.timedelta(seconds=30)),
        "never_started": create(status=QUEUED, created=now - dt.timedelta(hours=7)),
    }


def _statuses(jobs) -> dict[str, str]:
    for job in jobs.values():
        job.refresh_from_db()
    return {name: job.status for name, job in jobs.items()}


# The lost job goes back to the queue to be resumed; one never started in hours fails.
SURVIVORS = {"beating": RUNNING, "just_started": RUNNING, "lost": QUEUED, "waiting": QUEUED, "never_started": FAILED}


def test_batch_sweep_takes_over_only_jobs_that_stopped(course):
    jobs = _jobs(lambda **f: BatchJob.objects.create(course=course, action="enroll", total=10, **f))
    assert jobs_sweep(BatchJob) == 2
    assert _statuses(jobs) == SURVIVORS
    assert jobs["lost"].takeovers == 1 and "never started" in jobs["never_started"].error


def test_bulk_enroll_sweep_takes_over_only_jobs_that_stopped(course_staff):
    jobs = _jobs(lambda **f: BulkEnrollJob.objects.create(requester=course_staff, total=10, **f))
    assert jobs_sweep(BulkEnrollJob) == 2
    assert _statuses(jobs) == SURVIVORS


# --- who may poll a job ---------------------------------------------------------------------


@pytest.fixture
def other_course_job(other_course, other_staff):
    # finished in the request, so its results (CSV included) exist to be refused
    return BatchJob.objects.create(
        course=other_course, action="enroll", total=0, status="succeeded", requester=other_staff, ran_in_request=True, results=[]
    )


@pytest.mark.parametrize("name", ["batch_job_status", "batch_results", "batch_job_results"])
def test_a_batch_is_not_reachable_through_another_course(client_for, course, course_staff, other_course_job, name):
    """Staff of ``course`` pass the course check on their own course's URL; the
    job of another course must still not be found there."""
    response = client_for(course_staff).get(reverse(name, args=[course.key, other_course_job.public_id]))
    assert response.status_code == 404


def test_a_batch_is_shared_by_its_course_team(client_for, course, course_staff, course_admin):
    job = BatchJob.objects.create(course=course, action="enroll", total=2, status=RUNNING, requester=course_staff)
    url = reverse("batch_job_status", args=[course.key, job.public_id])
    assert client_for(course_admin).get(url).status_code == 200  # the team's, not only the requester's


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_an_api_job_is_polled_by_its_requester_or_a_platform_admin_only(course, course_staff, course_admin, platform_admin):
    job = BulkEnrollJob.objects.create(requester=course_staff, total=10, status=RUNNING, heartbeat_at=timezone.now())
    url = f"/api/bulk_enroll/v1/jobs/{job.public_id}/"
    assert _api(course_staff).get(url).status_code == 200
    assert _api(platform_admin).get(url).status_code == 200
    # a team member of the same course who did not ask for it: as if it did not exist
    assert _api(course_admin).get(url).status_code == 404
