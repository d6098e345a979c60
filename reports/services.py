"""Writes for report tasks: ask for a report, produce it, fail what was lost.

A report is produced by a worker in constant memory: rows stream from a
server-side cursor into a temporary file, progress and a heartbeat go to the
task row every chunk, and the finished file is saved through the storage API
(local disk here, S3 or another storage in production)."""

from __future__ import annotations

import csv
import io
import re
import tempfile
from datetime import timedelta
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from courses.models import Course
from enrollment_site.celery import HARD_TIME_LIMIT
from enrollment_site.lib.safe_csv import safe_row
from enrollment_site.lib.tasks import enqueue_on_commit

from .models import ReportTask
from .selectors import CHUNK_SIZE, REPORTS

# A running task writes a heartbeat every chunk and cannot outlive the hard time
# limit, so a heartbeat older than that (plus a margin) means its worker is gone.
STALE_AFTER = timedelta(seconds=HARD_TIME_LIMIT) + timedelta(minutes=2)
# A queued task no worker took within this long is failed rather than left pending
# (a lost message, or no worker consuming the reports queue); the team can ask again.
QUEUED_TIMEOUT = timedelta(hours=1)

ERROR_LOST = "worker lost or timed out"
ERROR_NEVER_STARTED = "never started"
ERROR_TIMED_OUT = "timed out"


class ReportRequest(NamedTuple):
    """What ``report_request`` answers: the task, and whether it is a new one."""

    task: ReportTask
    created: bool


@transaction.atomic
def report_request(*, course: Course, kind: str, requester) -> ReportRequest:
    """Queue a report of ``kind`` for ``course``, or answer the one already pending.

    The partial unique index on (course, kind) over queued and running rows
    decides between two concurrent requests; the loser gets the winner's row
    (``created`` False). The task is sent once the transaction commits."""
    if kind not in REPORTS:
        raise ValidationError(f"Unknown report {kind!r}.")
    # A pending row whose worker died must not block a new request until the beat runs.
    reports_fail_stale()
    for _ in range(3):
        try:
            with transaction.atomic():
                task = ReportTask.objects.create(course=course, kind=kind, requester=requester)
        except IntegrityError:
            pending = ReportTask.objects.filter(course=course, kind=kind, state__in=ReportTask.PENDING_STATES).first()
            if pending is not None:
                return ReportRequest(pending, False)
            continue  # the pending one finished in between: try again
        from .tasks import run_report

        enqueue_on_commit(run_report, task.pk)
        return ReportRequest(task, True)
    raise IntegrityError("could not queue the report")  # pragma: no cover - needs three finished races in a row


def report_filename(*, course: Course, kind: str, when=None) -> str:
    """``{org}_{course}_{report}_{YYYY-MM-DD-HHMM}.csv`` from parts of the course key
    reduced to letters, digits, ``.``, ``_`` and ``-`` (safe on every file system
    and in a Content-Disposition header)."""
    when = timezone.localtime(when or timezone.now())
    org, number = (_safe_part(part) for part in (course.org, course.number))
    return f"{org}_{number}_{REPORTS[kind].name}_{when:%Y-%m-%d-%H%M}.csv"


def _safe_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text).lstrip(".") or "course"


def report_run(*, task_id: int, celery_task_id: str = "") -> ReportTask | None:
    """Produce a queued report: claim it, stream its rows to a file, save the file.

    The claim is a conditional UPDATE from queued to running, so a message
    delivered twice (``acks_late``, a redelivery after a visibility timeout)
    produces one file; a run that finds the row taken returns None. On any
    error the row is marked failed with the message and the error re-raised."""
    now = timezone.now()
    claimed = ReportTask.objects.filter(pk=task_id, state=ReportTask.State.QUEUED).update(
        state=ReportTask.State.RUNNING, started=now, heartbeat_at=now, celery_task_id=celery_task_id or F("celery_task_id")
    )
    if not claimed:
        return None
    task = ReportTask.objects.select_related("course").get(pk=task_id)
    try:
        _produce(task)
    except Exception as exc:
        report_fail(task_id=task.pk, error=str(exc) or exc.__class__.__name__)
        raise
    task.refresh_from_db()
    return task


def _produce(task: ReportTask) -> None:
    spec = REPORTS[task.kind]
    course = task.course
    total = spec.queryset(course).count()
    ReportTask.objects.filter(pk=task.pk).update(total=total, heartbeat_at=timezone.now())
    done = 0
    # A temporary file, not memory: the report may have millions of rows.
    with tempfile.TemporaryFile() as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(safe_row(spec.header))
        for row in spec.rows(course):
            writer.writerow(safe_row(row))
            done += 1
            if done % CHUNK_SIZE == 0:
                # Rows may have been added since the count; the total never shows less than done.
                ReportTask.objects.filter(pk=task.pk).update(done=done, total=max(total, done), heartbeat_at=timezone.now())
        text.flush()
        text.detach()  # keep ``raw`` open for the storage
        raw.seek(0)
        name = report_filename(course=course, kind=task.kind)
        # One directory per course: two courses with the same org and number
        # (different runs) never overwrite each other's files.
        stored = default_storage.save(f"reports/{course.pk}/{name}", File(raw, name=name))
    finished = timezone.now()
    ReportTask.objects.filter(pk=task.pk, state=ReportTask.State.RUNNING).update(
        state=ReportTask.State.SUCCEEDED, file=stored, done=done, total=done, finished=finished, heartbeat_at=finished, error=""
    )


def report_fail(*, task_id: int, error: str) -> int:
    """Mark a task failed with ``error`` (a running one, or one already failed
    whose message is made more precise, such as "timed out")."""
    return ReportTask.objects.filter(pk=task_id, state__in=(ReportTask.State.RUNNING, ReportTask.State.FAILED)).update(
        state=ReportTask.State.FAILED, finished=timezone.now(), error=error[:2000]
    )


def report_requeue(*, task_id: int) -> bool:
    """Put a failed task back in the queue for a retry after a transient error.
    False when the team has meanwhile asked for the same report again."""
    try:
        with transaction.atomic():
            return bool(
                ReportTask.objects.filter(pk=task_id, state=ReportTask.State.FAILED).update(
                    state=ReportTask.State.QUEUED, started=None, finished=None, heartbeat_at=None, error="", done=0
                )
            )
    except IntegrityError:
        return False


def reports_fail_stale(*, now=None) -> int:
    """Fail tasks that would otherwise show as pending forever: running ones
    whose heartbeat is older than the hard time limit (the worker was killed,
    lost or timed out) and queued ones no worker took in time. Runs every
    minute from beat and whenever the Data download tab renders."""
    now = now or timezone.now()
    lost = ReportTask.objects.filter(state=ReportTask.State.RUNNING, heartbeat_at__lt=now - STALE_AFTER).update(
        state=ReportTask.State.FAILED, finished=now, error=ERROR_LOST
    )
    never = ReportTask.objects.filter(state=ReportTask.State.QUEUED, created__lt=now - QUEUED_TIMEOUT).update(
        state=ReportTask.State.FAILED, finished=now, error=ERROR_NEVER_STARTED
    )
    return lost + never
