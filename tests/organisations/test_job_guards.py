"""What guards the organisation jobs: the sweep takes over only jobs that
stopped beating (a long job that still works keeps running), and a job's
progress is seen by its requester (a course's import) or platform admins
(/organisation/) only.

Each test here fails when the line it guards is removed (a sweep that fails
every running job, a job fetch without its requester, an organisation page
without its admin check)."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from enrollment_site.lib.jobs import job_claim, jobs_sweep
from organisations.models import EnrollmentRule, OrgJob, UnitKind
from organisations.selectors import Target
from organisations.services import (
    assignment_apply,
    import_check,
    import_run,
    org_job_create,
    org_job_run,
    rule_apply,
    rule_save,
    unit_members_add,
)

from ..factories import UserFactory
from .factories import OrgUnitFactory

pytestmark = pytest.mark.django_db

RUNNING, QUEUED, FAILED = OrgJob.Status.RUNNING, OrgJob.Status.QUEUED, OrgJob.Status.FAILED


def _job(**fields) -> OrgJob:
    return OrgJob.objects.create(kind=OrgJob.Kind.RULE, total=10, **fields)


def test_the_sweep_takes_over_only_jobs_that_stopped():
    now = timezone.now()
    long_ago = now - dt.timedelta(hours=3)
    jobs = {
        # started long ago but beat a minute ago: a long, healthy job
        "beating": _job(status=RUNNING, started=long_ago, heartbeat_at=now - dt.timedelta(minutes=1)),
        "just_started": _job(status=RUNNING, started=now, heartbeat_at=now),
        "lost": _job(status=RUNNING, started=long_ago, heartbeat_at=long_ago),
        "never_beat": _job(status=RUNNING, started=long_ago),
        "waiting": _job(status=QUEUED, created=now - dt.timedelta(seconds=30)),
        "never_started": _job(status=QUEUED, created=now - dt.timedelta(hours=7)),
    }
    assert jobs_sweep(OrgJob) == 3
    for job in jobs.values():
        job.refresh_from_db()
    assert {name: (job.status, job.takeovers) for name, job in jobs.items()} == {
        "beating": (RUNNING, 0), "just_started": (RUNNING, 0), "lost": (QUEUED, 1), "never_beat": (QUEUED, 1), "waiting": (QUEUED, 0),
        "never_started": (FAILED, 0),
    }


def test_claiming_a_job_writes_its_first_heartbeat(platform_admin):
    job = org_job_create(kind=OrgJob.Kind.RULE, payload={"rule_id": 0}, total=0, actor=platform_admin)
    job = org_job_run(job_id=job.pk)  # the missing rule fails it, after the claim
    assert job.started is not None and job.heartbeat_at is not None and job.heartbeat_at >= job.started


def _claimed_hours_ago(kind):
    """A job a worker claimed three hours ago, when it last beat, and that run."""
    long_ago = timezone.now() - dt.timedelta(hours=3)
    job = OrgJob.objects.create(kind=kind, total=1)
    run = job_claim(OrgJob, job.pk)
    OrgJob.objects.filter(pk=job.pk).update(started=long_ago, heartbeat_at=long_ago)
    return job, run


def _rule_work(course, actor):
    dept = OrgUnitFactory(kind=UnitKind.DEPARTMENT)
    UserFactory(department=dept)
    rule = EnrollmentRule(name="Long rule", department=dept)
    rule_save(rule=rule, courses=[course], actor=actor)
    job, run = _claimed_hours_ago(OrgJob.Kind.RULE)
    rule_apply(rule=rule, actor=actor, run=run)
    return job


def _assignment_work(course, actor):
    target = Target(unit=OrgUnitFactory(kind=UnitKind.TEAM))
    unit_members_add(target=target, users=[UserFactory()], actor=actor)
    job, run = _claimed_hours_ago(OrgJob.Kind.ASSIGNMENT)
    assignment_apply(target=target, course=course, actor=actor, run=run)
    return job


def _import_work(course, actor):
    checked = import_check(name="p.csv", data=f"email,{course.key}\nz@example.com,x\n".encode(), actor=actor)
    job, run = _claimed_hours_ago(OrgJob.Kind.IMPORT)
    import_run(org_import=checked, actor=actor, run=run)
    return job


@pytest.mark.parametrize("work", [_rule_work, _assignment_work, _import_work], ids=["rule", "assignment", "import"])
def test_a_job_that_still_works_keeps_running(course, platform_admin, work):
    """Progress beats: a job running for hours that just did a chunk is not lost."""
    job = work(course, platform_admin)
    job.refresh_from_db()
    assert job.done == 1 and job.heartbeat_at > timezone.now() - dt.timedelta(minutes=1)
    assert jobs_sweep(OrgJob) == 0
    job.refresh_from_db()
    assert (job.status, job.takeovers) == (RUNNING, 0)


# --- who may poll a job ---------------------------------------------------------------------


@pytest.fixture
def import_job(course, course_staff):
    """A course import job course_staff started from the Membership tab."""
    return OrgJob.objects.create(kind=OrgJob.Kind.IMPORT, status=RUNNING, requester=course_staff, total=7, heartbeat_at=timezone.now())


def test_a_course_import_job_is_polled_by_its_requester_only(client_for, course, course_staff, course_admin, import_job):
    url = reverse("course_org_job_status", args=[course.key, import_job.public_id])
    assert client_for(course_staff).get(url).status_code == 200
    # on the same course team, but not the one who asked: as if it did not exist
    assert client_for(course_admin).get(url).status_code == 404


def test_the_import_page_shows_a_job_to_its_requester_only(client_for, course, course_staff, course_admin, import_job):
    url = reverse("course_import", args=[course.key]) + f"?job={import_job.public_id}"
    assert client_for(course_staff).get(url).context["job"] == import_job
    assert client_for(course_admin).get(url).context["job"] is None


def test_organisation_job_status_is_for_platform_admins(client_for, course_staff, platform_admin, import_job):
    url = reverse("org_job_status", args=[import_job.public_id])
    assert client_for(platform_admin).get(url).status_code == 200
    # not even the requester polls it here unless they are a platform admin
    assert client_for(course_staff).get(url).status_code == 403
