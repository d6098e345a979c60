"""Writes for report tasks: ask for a report, produce it (the job lifecycle
and the stale sweep are in ``enrollment_site.lib.jobs``).

A report is produced by a worker in constant memory into a temporary file,
with progress and a heartbeat on the task row as it goes, and the finished
file is saved through the storage API (local disk here, S3 or another storage
in production). On PostgreSQL the rows come as CSV from ``COPY (query) TO
STDOUT``, formatted and formula-guarded in the query (``csv_copy``); on other
databases they stream from a cursor through ``safe_row`` and ``csv.writer``.
Both write the same bytes."""

from __future__ import annotations

import csv
import io
import logging
import queue
import re
import tempfile
import threading
from typing import IO, NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from courses.models import Course
from enrollment_site.lib.csv_copy import copy_csv
from enrollment_site.lib.jobs import (
    JobLost,
    JobRun,
    error_message,
    job_claim,
    job_fail,
    job_finish,
    job_heartbeat,
    job_progress,
    jobs_sweep,
)
from enrollment_site.lib.safe_csv import safe_row
from enrollment_site.lib.tasks import enqueue_on_commit

from .models import ReportTask
from .selectors import CHUNK_SIZE, REPORTS, ReportSpec

logger = logging.getLogger(__name__)

ERROR_TIMED_OUT = ReportTask.ERROR_TIMED_OUT


class ReportRequest(NamedTuple):
    """What ``report_request`` answers: the task, and whether it is a new one."""

    task: ReportTask
    created: bool


@transaction.atomic
def report_request(*, course: Course, kind: str, requester, language: str = "") -> ReportRequest:
    """Queue a report of ``kind`` for ``course``, or answer the one already pending.

    The file's header and words will be in ``language`` (blank: the active
    language), the file name and the columns programs rely on stay English
    (``ReportSpec``). The partial unique index on (course, kind) over queued and running rows
    decides between two concurrent requests; the loser gets the winner's row
    (``created`` False). The task is sent once the transaction commits."""
    if kind not in REPORTS:
        raise ValidationError(_("Unknown report “%(kind)s”.") % {"kind": kind})
    language = language or translation.get_language() or settings.LANGUAGE_CODE
    for _attempt in range(3):
        try:
            with transaction.atomic():
                task = ReportTask.objects.create(course=course, kind=kind, requester=requester, language=language)
        except IntegrityError:
            pending = ReportTask.objects.filter(course=course, kind=kind, status__in=ReportTask.PENDING_STATUSES).first()
            if pending is not None:
                # A pending row whose worker died is taken over (or sent
                # again) now, as the sweep would at its next minute.
                jobs_sweep(ReportTask, pk=pending.pk)
                pending.refresh_from_db()
                if pending.is_pending:
                    return ReportRequest(pending, False)
            continue  # the pending one finished (or was failed) in between: try again
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

    The claim (``job_claim``) makes a message delivered twice (``acks_late``, a
    redelivery after a visibility timeout) produce one file; a run that finds
    the row taken returns None. A report whose worker died is taken over and
    produced again from the start (its partial file died with the worker). On
    any error the row is marked failed with the message and the error
    re-raised (the task retries transient ones)."""
    run = job_claim(ReportTask, task_id, celery_task_id=celery_task_id or F("celery_task_id"))
    if run is None:
        return None
    task = ReportTask.objects.select_related("course").get(pk=task_id)
    try:
        with job_heartbeat(run):
            _produce(task, run)
    except JobLost:
        return None
    except Exception as exc:
        job_fail(ReportTask, task.pk, error=error_message(exc), run=run)
        raise
    task.refresh_from_db()
    return task


def by_copy() -> bool:
    """Whether reports are produced by COPY (PostgreSQL) rather than row by row."""
    return connection.vendor == "postgresql"


def _produce(task: ReportTask, run: JobRun) -> None:
    # The worker has no request: the language is the requester's, kept on the row.
    with translation.override(task.language or settings.LANGUAGE_CODE):
        _produce_file(task, run)


def _produce_file(task: ReportTask, run: JobRun) -> None:
    spec = REPORTS[task.kind]
    course = task.course
    total = spec.queryset(course).count()
    job_progress(run, done=0, total=total)  # a takeover starts again from nothing
    # A temporary file, not memory: the report may have millions of rows.
    with tempfile.TemporaryFile() as raw:
        write = _write_by_copy if by_copy() else _write_rows
        done = write(spec, course, raw, run=run, total=total)
        raw.seek(0)
        name = report_filename(course=course, kind=task.kind)
        # One directory per course: two courses with the same org and number
        # (different runs) never overwrite each other's files.
        stored = default_storage.save(f"reports/{course.pk}/{name}", File(raw, name=name))
    if not job_finish(run, file=stored, done=done, total=done, error=""):
        default_storage.delete(stored)  # taken over meanwhile: the successor's file is the one
        raise JobLost(f"report {task.pk} was taken over")


def _write_header(spec: ReportSpec, raw: IO[bytes]) -> io.TextIOWrapper:
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    csv.writer(text).writerow(safe_row([str(column) for column in spec.header]))
    text.flush()
    return text


def _write_rows(spec: ReportSpec, course: Course, raw: IO[bytes], *, run: JobRun, total: int) -> int:
    """The report's rows through ``safe_row`` and ``csv.writer``, from a
    server-side cursor in chunks, progress every chunk. Returns the rows written."""
    text = _write_header(spec, raw)
    writer = csv.writer(text)
    done = 0
    for row in spec.rows(course):
        writer.writerow(safe_row(row))
        done += 1
        if done % CHUNK_SIZE == 0:
            # Rows may have been added since the count; the total never shows less than done.
            job_progress(run, done=done, total=max(total, done))
    text.flush()
    text.detach()  # keep ``raw`` open for the storage
    return done


def _write_by_copy(spec: ReportSpec, course: Course, raw: IO[bytes], *, run: JobRun, total: int) -> int:
    """The report's rows by ``COPY (query) TO STDOUT``, formatted and guarded
    in the query, written chunk by chunk as they arrive, progress from a thread
    every chunk. Returns the rows written."""
    _write_header(spec, raw).detach()
    with _ProgressFromThread(run, total) as progress:
        return copy_csv(*spec.copy_select(course), raw, on_chunk=progress.report)


class _ProgressFromThread:
    """Records a COPY's progress on the task row from a thread of its own.

    The COPY holds the run's database connection until its last row, so the
    progress cannot be written on it; the thread has its own connection (as
    the heartbeat's has). At most one count waits for the thread: while the
    row is locked (a chunk of a takeover being decided, say) the stream waits
    too, as the row-by-row path waits on its own progress writes."""

    def __init__(self, run: JobRun, total: int):
        self.run, self.total = run, total
        self.counts: queue.Queue[int | None] = queue.Queue(maxsize=1)
        self.thread = threading.Thread(target=self._write, name=f"report progress {run.pk}", daemon=True)

    def __enter__(self) -> _ProgressFromThread:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.counts.put(None)
        self.thread.join(timeout=30)

    def report(self, done: int) -> None:
        self.counts.put(done)

    def _write(self) -> None:
        try:
            while (done := self.counts.get()) is not None:
                try:
                    # Rows may have been added since the count; the total never shows less than done.
                    job_progress(self.run, done=done, total=max(self.total, done))
                except Exception:  # noqa: BLE001 - the thread must live to take every count; the report goes on
                    logger.warning("report %s: recording progress failed", self.run.pk, exc_info=True)
        finally:
            connections.close_all()  # this thread's own connection


def report_fail(*, task_id: int, error: str) -> int:
    """Mark a task failed with ``error`` (a running one, or one already failed
    whose message is made more precise, such as "timed out")."""
    return int(job_fail(ReportTask, task_id, error=error))


def report_requeue(*, task_id: int) -> bool:
    """Put a failed task back in the queue for a retry after a transient error.
    False when the team has meanwhile asked for the same report again."""
    try:
        with transaction.atomic():
            return bool(
                ReportTask.objects.filter(pk=task_id, status=ReportTask.Status.FAILED).update(
                    status=ReportTask.Status.QUEUED, started=None, finished=None, heartbeat_at=None, error="", done=0
                )
            )
    except IntegrityError:
        return False
