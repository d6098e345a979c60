"""Batch enrollment as a job: run in the request and recorded (small batches)
or queued and run by a worker in chunks, with progress and a results CSV. An
uploaded file is always queued: the worker reads it (in a child process with
limits, ``enrollment_site.lib.uploads``) and keeps its rows; the course team
then chooses the column of identifiers and previews the batch like a pasted
list (``previews.py``; the read upload goes once its preview is confirmed or swept)."""

from __future__ import annotations

import dataclasses
from collections import Counter

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.types import Actor, recorded_user
from courses.models import Course
from enrollment_site.lib.identifiers import FileIdentifiers, identifiers_from_column, parse_identifiers
from enrollment_site.lib.jobs import JobLost, error_message, job_chunk, job_chunks, job_claim, job_fail, job_finish, job_heartbeat
from enrollment_site.lib.tasks import enqueue_on_commit
from enrollment_site.lib.upload_reader import Limits
from enrollment_site.lib.uploads import UploadRefused, read_upload

from .. import reasons
from ..models import BatchJob, BatchJobChunk, Source
from ..periods import PeriodRequest
from ..periods_asked import asked_from_json, asked_json
from .batch import batch_period_check, check_identifier_count, enrollment_batch_update
from .batch_decide import ACTIONS
from .batch_preview import PreviewStale


@transaction.atomic
def batch_job_create(*, course: Course, identifiers: list[str], action: str, auto_enroll: bool, email_students: bool,
                     actor: Actor, reason: str = "", source: str = Source.BATCH, input_note: str = "", upload: File | None = None,
                     expected_fingerprint: str = "", period: PeriodRequest | None = None) -> BatchJob:
    """Queue a batch too large for the request, or one with an uploaded file.
    The distinct identifiers are stored on the job row, so that any worker
    can run it; an ``upload`` is stored as it came (its size is the caller's
    to cap) and read by the worker (``batch_job_run``), never here. With
    ``expected_fingerprint`` (a confirmed preview's) the worker applies the
    whole list at once, and only if it still decides what the preview showed.
    ``period`` (enroll only) is kept on the job as asked, for the worker to apply."""
    if action not in ACTIONS:
        raise ValidationError(_("Unknown action %(action)s; use 'enroll' or 'unenroll'.") % {"action": repr(action)})
    batch_period_check(action=action, period=period)
    # Distinct over the whole batch, so that a chunk of the run does not report
    # again an identifier an earlier chunk handled, and the total is what is run.
    distinct = [ident.text for ident in parse_identifiers(identifiers)]
    check_identifier_count(len(distinct))
    job = BatchJob.objects.create(
        course=course, requester=recorded_user(actor), action=action, auto_enroll=auto_enroll, email_students=email_students,
        reason=reason, source=source, identifiers="\n".join(distinct), total=len(distinct), input_note=input_note[:500],
        upload_name=(upload.name or "upload")[:255] if upload else "",
        expected_fingerprint=expected_fingerprint, period=asked_json(period),
    )
    if upload is not None:
        job.upload.save(f"{job.public_id}.upload", upload, save=False)
        BatchJob.objects.filter(pk=job.pk).update(upload=job.upload.name)
    from ..tasks import run_batch_job

    enqueue_on_commit(run_batch_job, job.pk)
    return job


@transaction.atomic
def batch_job_run_inline(*, course: Course, identifiers: list[str], action: str, auto_enroll: bool, email_students: bool,
                         actor: Actor, reason: str = "", source: str = Source.BATCH, input_note: str = "",
                         expected_fingerprint: str | None = None, period: PeriodRequest | None = None) -> BatchJob:
    """Run a batch small enough for the request and record it as a finished
    job holding its summary and one results row per identifier, so that the
    page can redirect to the results (Post/Redirect/Get) and show them again.

    Enrollment changes and the record commit together: there are no results
    without the changes, nor changes without their results. With
    ``expected_fingerprint`` (a confirmed preview's) nothing is written or
    recorded unless the batch still does what the preview showed
    (``PreviewStale`` otherwise)."""
    result = enrollment_batch_update(
        course=course, identifiers=identifiers, action=action, auto_enroll=auto_enroll, email_students=email_students,
        actor=actor, reason=reason, source=source, expected_fingerprint=expected_fingerprint, period=period,
    )
    now = timezone.now()
    count = len(result.results)
    # The job's id is the operation's, as for a queued job: its results page offers the operation's undo.
    return BatchJob.objects.create(
        public_id=result.operation_id, course=course, requester=recorded_user(actor), action=action,
        auto_enroll=auto_enroll, email_students=email_students, reason=reason, source=source, input_note=input_note[:500],
        ran_in_request=True, status=BatchJob.Status.SUCCEEDED, total=count, done=count, created=now, started=now, finished=now, heartbeat_at=now,
        summary=result.summary, results=[r.as_row() for r in result.results], period=asked_json(period),
    )


def upload_limits() -> Limits:
    """What an uploaded list may hold: a row per identifier (and a heading), any number of columns up to 1,000."""
    return Limits(max_rows=settings.ENROLLMENT_MAX_IDENTIFIERS + 1, max_columns=1000)


def batch_job_read_upload(job: BatchJob) -> list[list[str]]:
    """Read the job's uploaded file (in a child process with a time limit and
    a memory ceiling) into its rows, which the job keeps for the course team
    to choose the column of identifiers (``batch_upload_identifiers``).
    Raises UploadRefused for a file that cannot be read or holds nothing."""
    with job.upload.open("rb") as stored:
        data = stored.read()
    txt = job.upload_name.lower().endswith(".txt")
    rows = read_upload(name=job.upload_name, data=data, limits=upload_limits(), formats=("csv",), delimiter=None, txt="lines" if txt else "csv")
    if not any(cell.strip() for row in rows for cell in row):
        raise UploadRefused(_("The file holds no usernames or emails."))
    return rows


def batch_upload_identifiers(job: BatchJob, *, column: int, heading: bool) -> tuple[list[str], str]:
    """The distinct identifiers a read upload gives with the course team's
    choice (``column``, 1-based, and whether the first row is a heading),
    after the ones pasted with it, and the note saying what was read. Writes
    nothing. Raises UploadRefused when that column holds no identifier,
    TooManyIdentifiers above the cap."""
    read = identifiers_from_column(job.upload_rows or [], column=column, heading=heading)
    if job.upload_name.lower().endswith(".txt"):  # a text file is one list, read like the paste box
        read = dataclasses.replace(read, column=None)
    if not read.tokens:
        raise UploadRefused(
            _("Column %(column)s of %(file)s holds no usernames or emails. Choose another column. Nothing was changed.")
            % {"column": column, "file": job.upload_name}
        )
    pasted = [line for line in job.identifiers.splitlines() if line.strip()]
    distinct = [ident.text for ident in parse_identifiers(pasted + read.tokens)]
    check_identifier_count(len(distinct))
    return distinct, describe_file_read(job.upload_name, read)[:500]


def describe_file_read(name: str, read: FileIdentifiers) -> str:
    """Tell the course team what was taken from an uploaded file."""
    rows = ngettext("%(n)s row", "%(n)s rows", read.rows) % {"n": f"{read.rows:,}"}
    if read.column is None:
        lines = ngettext("%(n)s line", "%(n)s lines", read.rows) % {"n": f"{read.rows:,}"}
        text = f"{name}: read {lines} as a list, like the box above."
    elif read.heading:
        text = f"{name}: read column {read.column} (“{read.heading}”) of {rows}; the heading row was skipped and other columns ignored."
    else:
        text = f"{name}: no heading row (email, username or identifier) found, so column {read.column} of {rows} was read."
    if read.empty:
        empty = ngettext("%(n)s row had", "%(n)s rows had", read.empty) % {"n": f"{read.empty:,}"}
        text += f" {empty} nothing in that column."
    return text


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
            # Read inside the heartbeat: a big file may take longer than the stale threshold.
            if job.upload_name and not job.input_note:
                # The file is read, then waits for the course team's column choice: nothing is run yet.
                try:
                    rows = batch_job_read_upload(job)
                except UploadRefused as exc:  # the file's fault: the job says why, nothing changed
                    job_fail(BatchJob, job.pk, error=reasons.UPLOAD_REFUSED % {"file": job.upload_name, "error": error_message(exc)}, run=run)
                    job.refresh_from_db()
                    return job
                job_finish(run, store=BatchJobChunk, upload_rows=rows)
                job.refresh_from_db()
                return job
            tokens = [line for line in job.identifiers.splitlines() if line.strip()]
            summary: Counter = Counter(job.summary)
            # Who earlier chunks named, so that a person named again is "named twice".
            seen_users: dict[int, str] = {}
            for data in job_chunks(BatchJobChunk, run):
                seen_users.update({int(pk): ident for pk, ident in data["seen"].items()})
            # A confirmed preview's batch is applied whole, in one transaction: all that the preview showed, or nothing.
            size = max(len(tokens), 1) if job.expected_fingerprint else BATCH_CHUNK
            asked = asked_from_json(job.period)
            for start in range(run.position, len(tokens), size):
                chunk = tokens[start : start + size]
                with job_chunk(run, store=BatchJobChunk) as record:
                    before = set(seen_users)
                    result = enrollment_batch_update(
                        course=job.course, identifiers=chunk, action=job.action, auto_enroll=job.auto_enroll,
                        email_students=job.email_students, actor=job.requester, reason=job.reason, source=job.source,
                        operation_id=job.public_id, seen_users=seen_users, expected_fingerprint=job.expected_fingerprint or None,
                        period=asked,
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
    except PreviewStale as stale:  # nothing was written: the new preview is kept for its requester to confirm instead
        from .previews import preview_stale_in_job

        job_fail(BatchJob, job.pk, error=preview_stale_in_job(job, stale), run=run)
    except Exception as exc:
        job_fail(BatchJob, job.pk, error=error_message(exc), run=run)
        raise
    job.refresh_from_db()
    return job
