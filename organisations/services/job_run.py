"""Running a queued organisation job: a rule, an assignment or an import."""

from __future__ import annotations

from django.utils import timezone

from courses.models import Course

from ..models import EnrollmentRule, OrgImport, OrgJob, OrgUnit
from ..selectors.targets import Target
from .assignments import assignment_apply
from .enrollment_rules import rule_apply
from .imports import import_run


def org_job_run(*, job_id: int) -> OrgJob | None:
    """Run a queued job once: the conditional UPDATE claims it, so a second
    delivery of the task returns quietly."""
    now = timezone.now()
    if not OrgJob.objects.filter(pk=job_id, status=OrgJob.Status.QUEUED).update(status=OrgJob.Status.RUNNING, started=now, heartbeat_at=now):
        return None
    job = OrgJob.objects.select_related("requester").get(pk=job_id)
    p = job.payload
    try:
        if job.kind == OrgJob.Kind.RULE:
            summary = rule_apply(rule=EnrollmentRule.objects.get(pk=p["rule_id"]), actor=job.requester, email_students=p.get("email_students", False), job=job)
        elif job.kind == OrgJob.Kind.ASSIGNMENT:
            target = Target.parse(p["kind"], p["target_id"])
            course = Course.objects.get(pk=p["course_id"]) if p.get("course_id") else None
            qualification = OrgUnit.objects.get(pk=p["qualification_id"]) if p.get("qualification_id") else None
            summary = assignment_apply(target=target, course=course, qualification=qualification, actor=job.requester,
                                       email_students=p.get("email_students", False), job=job)
        else:
            summary = import_run(org_import=OrgImport.objects.get(pk=p["import_id"]), actor=job.requester, job=job)
    except Exception as exc:  # a failed job says why, it never stays running
        OrgJob.objects.filter(pk=job.pk).update(status=OrgJob.Status.FAILED, finished=timezone.now(), error=str(exc)[:2000])
    else:
        OrgJob.objects.filter(pk=job.pk).update(status=OrgJob.Status.SUCCEEDED, finished=timezone.now(), done=job.total, summary=summary)
    job.refresh_from_db()
    return job
