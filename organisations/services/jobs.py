"""Organisation jobs: queueing a rule, an assignment or an import to run in
the background, and failing the jobs a dead worker left behind. What a job
does when it runs is in ``job_run.py``."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from enrollment_site.lib.tasks import enqueue_on_commit

from ..models import OrgJob


def org_job_create(*, kind: str, payload: dict, total: int, actor) -> OrgJob:
    """Queue work too big for the request; a worker runs it (``org_job_run``)
    once this transaction commits. ``total`` is what the progress bar counts."""
    from ..tasks import run_org_job

    job = OrgJob.objects.create(kind=kind, payload=payload, total=total, requester=actor if getattr(actor, "is_authenticated", False) else None)
    enqueue_on_commit(run_org_job, job.pk)
    return job


def org_jobs_fail_stale(*, running_hours: int = 2, queued_hours: int = 6) -> int:
    """A job whose worker died shows as failed with its reason, never as
    pending forever: called whenever a job's progress is read. A running job
    is lost when its last heartbeat (its start, before the first) is older
    than ``running_hours``; a long job that still beats keeps running."""
    now = timezone.now()
    lost = now - timedelta(hours=running_hours)
    running = OrgJob.objects.filter(Q(heartbeat_at__lt=lost) | Q(heartbeat_at__isnull=True, started__lt=lost), status=OrgJob.Status.RUNNING).update(
        status=OrgJob.Status.FAILED, finished=now, error="The worker was lost or the job timed out."
    )
    queued = OrgJob.objects.filter(status=OrgJob.Status.QUEUED, created__lt=now - timedelta(hours=queued_hours)).update(
        status=OrgJob.Status.FAILED, finished=now, error="The job never started: is a worker running?"
    )
    return running + queued
