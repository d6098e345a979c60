"""Batch enrollment as a job: run in the request and recorded (small batches)
or queued and run by a worker in chunks, with progress and a results CSV."""

from __future__ import annotations

from collections import Counter

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.types import Actor, recorded_user
from courses.models import Course
from enrollment_site.lib.identifiers import parse_identifiers
from enrollment_site.lib.jobs import JobLost, error_message, job_chunk, job_chunks, job_claim, job_fail, job_finish, job_heartbeat
from enrollment_site.lib.tasks import enqueue_on_commit

from ..models import BatchJob, BatchJobChunk, Source
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

# Identifiers per committed chunk (a setting, so that a test's worker can take small ones).
BATCH_CHUNK = settings.ENROLLMENT_JOB_CHUNK


def batch_job_run(*, job_id: int) -> BatchJob | None:
    """Run a queued batch job in chunks, recording progress on its row and
    writing the per-identifier results as CSV through the storage API.

    Claims the job (``job_claim``), so a message delivered twice runs it
    once; returns None when someone else has it. Each chunk's enrollments,
    audit entries and emails commit together with the job's position and the
    chunk's results rows (``job_chunk``), so a run that takes over the job of
    a dead worker resumes after the last committed chunk: nobody is enrolled,
    audited or mailed twice. The whole job is one operation (its audit
    entries share the job's public id). An error fails the job with its
    message and is re-raised (``enrollment_site.lib.jobs``)."""
    import csv
    import io

    from django.core.files.base import ContentFile

    from enrollment_site.lib.safe_csv import safe_row

    run = job_claim(BatchJob, job_id)
    if run is None:
        return None
    job = BatchJob.objects.select_related("course", "requester").get(pk=job_id)
    try:
        with job_heartbeat(run):
            tokens = [line for line in job.identifiers.splitlines() if line.strip()]
            summary: Counter = Counter(job.summary)
            # Who earlier chunks named, so that a person named again is "named twice".
            seen_users: dict[int, str] = {}
            for data in job_chunks(BatchJobChunk, run):
                seen_users.update({int(pk): ident for pk, ident in data["seen"].items()})
            for start in range(run.position, len(tokens), BATCH_CHUNK):
                chunk = tokens[start : start + BATCH_CHUNK]
                with job_chunk(run, store=BatchJobChunk) as record:
                    before = set(seen_users)
                    result = enrollment_batch_update(
                        course=job.course, identifiers=chunk, action=job.action, auto_enroll=job.auto_enroll,
                        email_students=job.email_students, actor=job.requester, reason=job.reason, source=job.source,
                        operation_id=job.public_id, seen_users=seen_users,
                    )
                    rows = [
                        safe_row([r.identifier, r.outcome.label, r.username, r.email, r.before.enrollment, r.after.enrollment,
                                  r.after.allowed, r.after.auto_enroll, r.note])
                        for r in result.results
                    ]
                    summary.update({str(outcome): count for outcome, count in result.summary.items()})
                    seen = {pk: ident for pk, ident in seen_users.items() if pk not in before}
                    record.record(advance=len(chunk), data={"rows": rows, "seen": seen}, summary=dict(summary))
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(["identifier", "outcome", "username", "email", "enrolled before", "enrolled after", "allowed after", "auto_enroll after", "note"])
            for data in job_chunks(BatchJobChunk, run):
                writer.writerows(data["rows"])
            name = f"{job.course.org}_{job.course.number}_batch_{job.action}_{timezone.now():%Y-%m-%d-%H%M}.csv"
            job.results_file.save(name, ContentFile(buffer.getvalue().encode("utf-8")), save=False)
            if not job_finish(run, store=BatchJobChunk, done=job.total, summary=dict(summary), results_file=job.results_file.name):
                job.results_file.delete(save=False)
                return None
    except JobLost:
        return None  # taken over: the job is its successor's
    except Exception as exc:
        job_fail(BatchJob, job.pk, error=error_message(exc), run=run)
        raise
    job.refresh_from_db()
    return job
