"""Organisation jobs: queueing a rule, an assignment or an import to run in
the background. What a job does when it runs is in ``job_run.py``; its
lifecycle (claim, progress, finish, fail, the stale sweep) in
``enrollment_site.lib.jobs``."""

from __future__ import annotations

from django.conf import settings
from django.utils import translation

from accounts.types import Actor, recorded_user
from enrollment_site.lib.tasks import enqueue_on_commit

from ..models import OrgJob


def org_job_create(*, kind: str, payload: dict, total: int, actor: Actor) -> OrgJob:
    """Queue work too big for the request; a worker runs it (``org_job_run``)
    once this transaction commits. ``total`` is what the progress bar counts.
    The job keeps the language of the request that queued it: what it writes
    for people to read (a file's errors, the results file) is in that language."""
    from ..tasks import run_org_job

    payload = {**payload, "language": translation.get_language() or settings.LANGUAGE_CODE}
    job = OrgJob.objects.create(kind=kind, payload=payload, total=total, requester=recorded_user(actor))
    enqueue_on_commit(run_org_job, job.pk)
    return job
