"""Running a queued organisation job: a rule, an assignment, an import file's check or an import."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.utils import translation

from courses.models import Course
from enrollment_site.lib.jobs import JobLost, error_message, job_claim, job_fail, job_finish, job_heartbeat

from ..import_file import ImportFileError
from ..models import EnrollmentRule, OrgImport, OrgJob, OrgJobChunk, OrgUnit
from ..selectors.targets import Target
from .assignments import assignment_apply
from .enrollment_rules import rule_apply
from .imports import import_check_run, import_run


def org_job_run(*, job_id: int) -> OrgJob | None:
    """Run a queued job once: ``job_claim`` takes it, so a second delivery of
    the task returns quietly. A job whose worker died is taken over and
    carries on from its last committed chunk (a rule or an assignment works
    out again what is left to do; an import goes on from its position; a file
    check reads the file again).
    Whatever goes wrong fails the job with its message; an expected refusal
    (a ``ValidationError``, a file its check refuses, a rule, course or import
    deleted since it was queued) ends there and the job is returned, any other
    error is re-raised once recorded (``enrollment_site.lib.jobs``).

    A rule, an assignment or an import is audited under the job's
    ``public_id`` as its operation id: every run of the job, a takeover's too,
    writes under the same one, so that one undo takes all of it back."""
    run = job_claim(OrgJob, job_id)
    if run is None:
        return None
    job = OrgJob.objects.select_related("requester").get(pk=job_id)
    p = job.payload
    try:
        with job_heartbeat(run), translation.override(p.get("language", settings.LANGUAGE_CODE)):
            if job.kind == OrgJob.Kind.RULE:
                done = rule_apply(rule=EnrollmentRule.objects.get(pk=p["rule_id"]), actor=job.requester, email_students=p.get("email_students", False),
                                  run=run, operation_id=job.public_id)
                summary = _totals(done, run.counts)
            elif job.kind == OrgJob.Kind.ASSIGNMENT:
                target = Target.parse(p["kind"], p["target_id"])
                course = Course.objects.get(pk=p["course_id"]) if p.get("course_id") else None
                qualification = OrgUnit.objects.get(pk=p["qualification_id"]) if p.get("qualification_id") else None
                done = assignment_apply(target=target, course=course, qualification=qualification, actor=job.requester,
                                        email_students=p.get("email_students", False), run=run, operation_id=job.public_id)
                summary = _totals(done, run.counts)
            elif job.kind == OrgJob.Kind.CHECK:
                summary = import_check_run(org_import=OrgImport.objects.get(pk=p["import_id"]))
            else:
                summary = import_run(org_import=OrgImport.objects.get(pk=p["import_id"]), actor=job.requester, run=run, operation_id=job.public_id)
            finished = job_finish(run, store=OrgJobChunk, done=job.total, summary=summary)
    except JobLost:
        return None  # taken over: the job is its successor's
    except (ValidationError, ObjectDoesNotExist, ImportFileError) as exc:  # a failed job says why, it never stays running
        job_fail(OrgJob, job.pk, error=error_message(exc), run=run)
    except Exception as exc:
        job_fail(OrgJob, job.pk, error=error_message(exc), run=run)
        raise
    else:
        if not finished:
            return None
    job.refresh_from_db()
    return job


def _totals(done: dict[str, int], counts: dict[str, int]) -> dict[str, int]:
    # What every run of the job did (``counts``, committed chunk by chunk), under every key this run reports.
    return {**dict.fromkeys(done, 0), **counts}
