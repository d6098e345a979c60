"""Batch enrollment as a job: run in the request and recorded (small batches)
or queued and run by a worker in chunks, with progress and a results CSV."""

from __future__ import annotations

import uuid
from collections import Counter

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.types import Actor, recorded_user
from courses.models import Course
from enrollment_site.lib.identifiers import parse_identifiers
from enrollment_site.lib.jobs import error_message, job_claim, job_fail, job_finish, job_progress
from enrollment_site.lib.tasks import enqueue_on_commit

from ..models import BatchJob, Source
from .batch import check_identifier_count, enrollment_batch_update
from .batch_decide import ACTIONS


@transaction.atomic
def batch_job_create(*, course: Course, identifiers: list[str], action: str, auto_enroll: bool, email_students: bool,
                     actor: Actor, reason: str = "", source: str = Source.BATCH, input_note: str = "") -> BatchJob:
    """Queue a batch too large for the request. The distinct identifiers are
    stored on the job row, so that any worker can run it."""
    if action not in ACTIONS:
        raise ValidationError(f"Unknown action {action!r}; use 'enroll' or 'unenroll'.")
    # Distinct over the whole batch, so that a chunk of the run does not report
    # again an identifier an earlier chunk handled, and the total is what is run.
    distinct = [ident.text for ident in parse_identifiers(identifiers)]
    check_identifier_count(len(distinct))
    job = BatchJob.objects.create(
        course=course, requester=recorded_user(actor), action=action, auto_enroll=auto_enroll, email_students=email_students,
        reason=reason, source=source, identifiers="\n".join(distinct), total=len(distinct), input_note=input_note[:500],
    )
    from ..tasks import run_batch_job

    enqueue_on_commit(run_batch_job, job.pk)
    return job


@transaction.atomic
def batch_job_run_inline(*, course: Course, identifiers: list[str], action: str, auto_enroll: bool, email_students: bool,
                         actor: Actor, reason: str = "", source: str = Source.BATCH, input_note: str = "") -> BatchJob:
    """Run a batch small enough for the request and record it as a finished
    job holding its summary and one results row per identifier, so that the
    page can redirect to the results (Post/Redirect/Get) and show them again.

    Enrollment changes and the record commit together: there are no results
    without the changes, nor changes without their results."""
    result = enrollment_batch_update(
        course=course, identifiers=identifiers, action=action, auto_enroll=auto_enroll, email_students=email_students,
        actor=actor, reason=reason, source=source,
    )
    now = timezone.now()
    count = len(result.results)
    return BatchJob.objects.create(
        course=course, requester=recorded_user(actor), action=action,
        auto_enroll=auto_enroll, email_students=email_students, reason=reason, source=source, input_note=input_note[:500],
        ran_in_request=True, status=BatchJob.Status.SUCCEEDED, total=count, done=count, created=now, started=now, finished=now, heartbeat_at=now,
        summary=result.summary, results=[r.as_row() for r in result.results],
    )


RESULTS_CSV_HEADER = ["identifier", "outcome", "username", "email", "note"]

BATCH_CHUNK = 5_000


def batch_job_run(*, job_id: int) -> BatchJob | None:
    """Run a queued batch job in chunks, recording progress on its row and
    writing the per-identifier results as CSV through the storage API.

    Claims the job (``job_claim``), so a message delivered twice runs it
    once; returns None when someone else has it. An error fails the job with
    its message and is re-raised (``enrollment_site.lib.jobs``)."""
    import csv
    import io

    from django.core.files.base import ContentFile

    from enrollment_site.lib.safe_csv import safe_row

    if not job_claim(BatchJob, job_id):
        return None
    job = BatchJob.objects.select_related("course", "requester").get(pk=job_id)
    try:
        tokens = [line for line in job.identifiers.splitlines() if line.strip()]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["identifier", "outcome", "username", "email", "enrolled before", "enrolled after", "allowed after", "auto_enroll after", "note"])
        summary: Counter = Counter()
        operation_id = uuid.uuid4()
        seen_users: dict[int, str] = {}
        for start in range(0, len(tokens), BATCH_CHUNK):
            chunk = tokens[start : start + BATCH_CHUNK]
            result = enrollment_batch_update(
                course=job.course, identifiers=chunk, action=job.action, auto_enroll=job.auto_enroll,
                email_students=job.email_students, actor=job.requester, reason=job.reason, source=job.source,
                operation_id=operation_id, seen_users=seen_users,
            )
            for r in result.results:
                writer.writerow(safe_row([
                    r.identifier, r.outcome.label, r.username, r.email, r.before.enrollment, r.after.enrollment, r.after.allowed, r.after.auto_enroll, r.note,
                ]))
            summary.update(result.summary)
            job_progress(BatchJob, job.pk, done=min(start + len(chunk), job.total), summary=dict(summary))
        job.refresh_from_db()
        name = f"{job.course.org}_{job.course.number}_batch_{job.action}_{timezone.now():%Y-%m-%d-%H%M}.csv"
        job.results_file.save(name, ContentFile(buffer.getvalue().encode("utf-8")), save=False)
        job_finish(BatchJob, job.pk, done=job.total, summary=dict(summary), results_file=job.results_file.name)
    except Exception as exc:
        job_fail(BatchJob, job.pk, error=error_message(exc))
        raise
    job.refresh_from_db()
    return job
