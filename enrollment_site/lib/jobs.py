"""One lifecycle for every background job the pages poll (a batch, an API bulk
call, an organisation job or import, a report).

Every job row extends ``ProgressJob``: who asked, its ``status``, progress
(``done`` of ``total``), ``error``, timestamps, a heartbeat, the ``position``
its committed work has reached and the token of the run that holds it
(``claim``). A job moves only through the helpers below, each a conditional
UPDATE on the row:

- ``job_claim``: queued → running, or a running job whose heartbeat is stale
  (its worker died) taken over; answers a ``JobRun`` (the token and the
  committed ``position`` to resume from) to the one caller that got it, None
  to everyone else, so a message delivered twice runs the job once.
- ``job_heartbeat``: a thread that beats every ``heartbeat_every()`` while the
  run works, however long one chunk takes.
- ``job_chunk``: one chunk of work committed together with the job's new
  position (and the chunk's output, for jobs that assemble a file at the end),
  only while this run still holds the job. A worker killed mid-chunk loses
  that chunk and nothing else; its successor starts from the position.
- ``job_progress``: done/total of a run that restarts rather than resumes.
- ``job_finish``: running → succeeded. ``job_fail``: → failed with a message.
- ``jobs_sweep``: the one sweep, run by beat every minute (``sweep_jobs`` in
  ``enrollment_site.celery``): a running job whose heartbeat is older than
  ``stale_after()`` is taken over (put back in the queue and sent again), a
  queued one nobody started within ``stale_after()`` is sent again (the broker
  was down, or the message was lost); a job taken over ``max_takeovers()``
  times fails rather than loop, a never-started one fails after its kind's
  ``queued_timeout``.

How a runner treats errors, in every kind: the job ends failed with the
error's message. An expected refusal (a ``ValidationError``, a row the payload
names that is gone) ends there and the runner returns the job; any other
error is re-raised after the job is marked failed, so that the worker logs it
and a task may retry where a retry makes sense (reports on a transient
database error, through ``report_requeue``). A run that lost its job to a
takeover (``JobLost``) changes nothing more: the job is its successor's.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import import_module
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connections, models, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy, gettext_noop, pgettext_lazy

from .stored_texts import stored_text

logger = logging.getLogger(__name__)

# A few heartbeats: a job beats every sixth of this (``heartbeat_every``), so a
# worker that is alive is never taken for dead, and a dead one is taken over
# within this plus the sweep's minute.
DEFAULT_STALE_AFTER = timedelta(seconds=120)
# Takeovers before a job fails: a job that kills its worker every time (it runs
# out of memory, say) must end with a message, not loop.
DEFAULT_MAX_TAKEOVERS = 3


class JobStatus(models.TextChoices):
    QUEUED = "queued", pgettext_lazy("job status", "Queued")
    RUNNING = "running", pgettext_lazy("job status", "Running")
    SUCCEEDED = "succeeded", pgettext_lazy("job status", "Succeeded")
    FAILED = "failed", pgettext_lazy("job status", "Failed")


PENDING_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class JobLost(Exception):
    """This run no longer holds its job: it was taken over (the run was
    thought dead) or failed meanwhile. What the run did in its open chunk is
    rolled back; it must stop without touching the job."""


class ProgressJob(models.Model):
    Status = JobStatus
    PENDING_STATUSES = PENDING_STATUSES

    # What the sweep writes, per kind: the wording each page has always shown.
    # Stored in English (the sweep has no reader); pages show it translated (stored_texts.shown_error).
    ERROR_LOST = stored_text(gettext_noop("The job was stopped: its worker was lost again and again (each time it was taken over and resumed)."))
    ERROR_NEVER_STARTED = stored_text(gettext_noop("The job never started: is a worker running?"))
    # A queued job no worker took within this long is failed rather than left
    # pending (no worker on its queue); it is sent again every stale_after()
    # meanwhile, and it can be asked again.
    queued_timeout = timedelta(hours=6)
    # The Celery task that runs a job of this kind with its id (the sweep sends it).
    task_name = ""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    # A running job's last sign of life; for a queued one, when it was last sent.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0, help_text=gettext_lazy("How far the committed work has got: where a taken-over job resumes."))
    takeovers = models.PositiveSmallIntegerField(default=0, help_text=gettext_lazy("How many times a stale run was taken over."))
    claim = models.UUIDField(null=True, blank=True, editable=False, help_text=gettext_lazy("The token of the run that holds the job."))

    class Meta:
        abstract = True
        ordering = ["-created"]

    @property
    def percent(self) -> int:
        if self.total:
            return min(100, int(100 * self.done / self.total))
        return 100 if self.status == JobStatus.SUCCEEDED else 0

    @property
    def is_pending(self) -> bool:
        return self.status in PENDING_STATUSES


class ProgressJobChunk(models.Model):
    """What one committed chunk of a job produced (its rows of the results
    file, say), for a job that assembles its output at the end: a run that
    takes the job over reads the chunks before its position instead of doing
    them again. A concrete model adds ``job`` (a foreign key, related name
    ``chunks``); the rows go once the job is finished."""

    start = models.PositiveIntegerField()
    data = models.JSONField()

    class Meta:
        abstract = True
        ordering = ["start"]


def stale_after() -> timedelta:
    """How old a running job's heartbeat may get before it is taken over (and
    a queued job's last sending before it is sent again)."""
    return getattr(settings, "JOBS_STALE_AFTER", DEFAULT_STALE_AFTER)


def heartbeat_every() -> float:
    """Seconds between two beats of a running job: a sixth of ``stale_after()``,
    so that several beats in a row must be missed before a takeover."""
    return max(stale_after().total_seconds() / 6, 0.1)


def max_takeovers() -> int:
    """How many times a job may be taken over before it fails."""
    return getattr(settings, "JOBS_MAX_TAKEOVERS", DEFAULT_MAX_TAKEOVERS)


@dataclass
class JobRun:
    """One run's hold on a job: the claim token its writes are conditional on,
    and the committed position it resumes from (advanced by ``job_chunk``).
    ``counts`` starts as the counts of the job's ``summary`` (if it has one):
    a runner that keeps running totals there adds to them and commits them
    with each chunk, so a resumed run goes on counting."""

    model: type[ProgressJob]
    pk: int
    token: uuid.UUID
    position: int = 0
    takeovers: int = 0
    resumed: bool = False
    counts: Counter = field(default_factory=Counter)

    def jobs(self) -> models.QuerySet:
        """The job's row, while this run holds it."""
        return self.model._default_manager.filter(pk=self.pk, claim=self.token, status=JobStatus.RUNNING)


def job_claim(model: type[ProgressJob], pk: int, **fields) -> JobRun | None:
    """Start job ``pk``: a queued one, or a running one whose heartbeat is older
    than ``stale_after()`` (its worker died: a redelivered message takes it
    over). Answers the ``JobRun`` to the one caller whose UPDATE matched
    (``fields`` written too), None to any other: someone else runs it, or it
    is finished. A stale job already taken over ``max_takeovers()`` times
    fails instead (``ERROR_LOST``) and None is answered."""
    now = timezone.now()
    token = uuid.uuid4()
    jobs = model._default_manager.filter(pk=pk)
    stale = Q(status=JobStatus.RUNNING) & _beat_before(now - stale_after())
    # A resumed job keeps the time it first started.
    started = Coalesce(F("started"), Value(now, output_field=models.DateTimeField()))
    start = {"status": JobStatus.RUNNING, "claim": token, "heartbeat_at": now, "started": started, **fields}
    if not jobs.filter(status=JobStatus.QUEUED).update(**start):
        if jobs.filter(stale, takeovers__gte=max_takeovers()).update(status=JobStatus.FAILED, finished=now, error=model.ERROR_LOST, claim=None):
            return None
        if not jobs.filter(stale).update(**start, takeovers=F("takeovers") + 1):
            return None
    has_summary = any(f.name == "summary" for f in model._meta.concrete_fields)
    position, takeovers, summary = jobs.filter(claim=token).values_list("position", "takeovers", "summary" if has_summary else "pk").get()
    counts = Counter({key: n for key, n in summary.items() if isinstance(n, int)} if has_summary else {})
    return JobRun(model=model, pk=pk, token=token, position=position, takeovers=takeovers, resumed=bool(position or takeovers), counts=counts)


@contextmanager
def job_heartbeat(run: JobRun) -> Iterator[None]:
    """Beat for ``run`` from a thread every ``heartbeat_every()`` seconds while
    the block runs, so that a long chunk (or a slow query) is never mistaken
    for a dead worker. The thread dies with its process: a killed worker
    stops beating at once."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(heartbeat_every()):
                try:
                    run.jobs().update(heartbeat_at=timezone.now())
                except DatabaseError:
                    # A busy database (SQLite's write lock, say) skips a beat; the next one comes soon.
                    logger.warning("job %s %s: a heartbeat failed", run.model.__name__, run.pk, exc_info=True)
        finally:
            connections.close_all()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"heartbeat {run.model.__name__} {run.pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


@dataclass
class ChunkRecord:
    """What a chunk commits besides its own writes: how far it moves the
    position, its output (``data``, for ``store``), other job fields."""

    advance: int = 0
    data: Any = None
    fields: dict[str, Any] = field(default_factory=dict)

    def record(self, *, advance: int, data: Any = None, **fields) -> None:
        self.advance, self.data, self.fields = advance, data, fields


@contextmanager
def job_chunk(run: JobRun | None, *, store: type[ProgressJobChunk] | None = None) -> Iterator[ChunkRecord]:
    """One chunk of ``run``'s work, in one transaction with the job's new
    position: the block does the chunk's writes and calls ``record(advance=,
    data=, **fields)``; on leaving, the position moves by ``advance`` (and
    ``done`` with it), the heartbeat is renewed, ``fields`` are written and
    ``data`` is kept as a row of ``store``, all committed with the writes or
    not at all. So a takeover resumes exactly after the last committed chunk:
    nothing is done twice, nothing skipped.

    The job row is locked first and must still be this run's at this
    position, or ``JobLost`` is raised before anything is written: a run
    taken for dead while it was in fact alive never commits over its
    successor, and a takeover waits for a chunk being committed.

    Without a ``run`` (the same work done in a request rather than as a job)
    the block is just a transaction and what it records goes nowhere."""
    if run is None:
        with transaction.atomic():
            yield ChunkRecord()
        return
    with transaction.atomic():
        # The lock orders this chunk against a takeover: the sweep or a
        # redelivered claim waits for it, then finds a fresh heartbeat.
        held = run.jobs().select_for_update().values_list("position", flat=True).first()
        if held != run.position:
            raise JobLost(f"{run.model.__name__} {run.pk} is no longer held by this run")
        chunk = ChunkRecord()
        yield chunk
        position = run.position + chunk.advance
        if store is not None and chunk.data is not None:
            store._default_manager.create(**_of(run), start=run.position, data=chunk.data)
        run.jobs().update(position=position, done=position, heartbeat_at=timezone.now(), **chunk.fields)
    run.position = position


def _of(run: JobRun) -> dict[str, int]:
    # A chunk model's foreign key to its job (``job``), which the abstract base cannot declare.
    return {"job_id": run.pk}


def job_chunks(store: type[ProgressJobChunk], run: JobRun) -> Iterator[Any]:
    """The output of ``run``'s job's committed chunks, in order."""
    yield from store._default_manager.filter(**_of(run)).order_by("start").values_list("data", flat=True).iterator(chunk_size=10)


def job_progress(run: JobRun, *, done: int | None = None, total: int | None = None, **fields) -> None:
    """Record progress (``done``, ``total``, other ``fields``) of a run that
    restarts rather than resumes (a report), with a heartbeat."""
    counts = {name: value for name, value in (("done", done), ("total", total)) if value is not None}
    run.jobs().update(**counts, **fields, heartbeat_at=timezone.now())


def job_finish(run: JobRun, *, store: type[ProgressJobChunk] | None = None, **fields) -> bool:
    """Mark ``run``'s job succeeded (with ``fields``, such as its result) and
    drop its chunks' rows from ``store``. False when this run no longer holds
    it (it was taken over or failed meanwhile): nothing is written then."""
    now = timezone.now()
    with transaction.atomic():
        finished = bool(run.jobs().update(status=JobStatus.SUCCEEDED, finished=now, heartbeat_at=now, claim=None, **fields))
        if finished and store is not None:
            store._default_manager.filter(**_of(run)).delete()
    return finished


def job_fail(model: type[ProgressJob], pk: int, *, error: str, run: JobRun | None = None) -> bool:
    """Mark a job failed with ``error`` (kept, up to 2000 characters): a queued
    or running one, or a failed one whose message is made more precise. With
    ``run``, only while that run holds it: a run that lost its job to a
    takeover never fails its successor's work."""
    jobs = model._default_manager.filter(pk=pk, status__in=(*PENDING_STATUSES, JobStatus.FAILED))
    if run is not None:
        jobs = jobs.filter(claim=run.token)
    return bool(jobs.update(status=JobStatus.FAILED, finished=timezone.now(), error=(error or "unknown error")[:2000]))


def error_message(exc: BaseException) -> str:
    """What a failed job says about ``exc``: its message, or its class name."""
    messages = getattr(exc, "messages", None)  # a ValidationError's own list
    return (" ".join(messages) if messages else str(exc)) or exc.__class__.__name__


def _beat_before(cutoff: datetime) -> Q:
    # A job's last sign of life: its heartbeat, or its start before the first one.
    return Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started__lt=cutoff) | Q(
        heartbeat_at__isnull=True, started__isnull=True, created__lt=cutoff
    )


def job_send(model: type[ProgressJob], pk: int) -> None:
    """Send the task that runs job ``pk``, once the current transaction commits
    (a broker that is down is logged; the sweep sends it again later)."""
    from celery import current_app

    from .tasks import enqueue_on_commit

    # The task's module registers it; a web process may not have imported it yet.
    import_module(model.task_name.rpartition(".")[0])
    enqueue_on_commit(current_app.tasks[model.task_name], pk)


def jobs_sweep(model: type[ProgressJob], *, now: datetime | None = None, **only) -> int:
    """Make sure none of this kind's jobs stays pending for good; returns how
    many it acted on. ``only`` narrows the rows (``pk=``).

    - running, heartbeat older than ``stale_after()``: its worker is gone. The
      job goes back to the queue (one more takeover) and is sent again; the
      run that claims it resumes from its position. One taken over
      ``max_takeovers()`` times fails instead (``ERROR_LOST``).
    - queued, older than the kind's ``queued_timeout`` and never started:
      fails (``ERROR_NEVER_STARTED``), nobody runs its queue.
    - queued, sent more than ``stale_after()`` ago: sent again (the broker was
      down or lost the message). One that was taken over counts this as one
      more takeover, so a job no worker ever resumes ends too.

    A job that still beats, or was just sent, is left alone."""
    now = now or timezone.now()
    cutoff = now - stale_after()
    jobs = model._default_manager.filter(**only)
    gone = Q(status=JobStatus.RUNNING) & _beat_before(cutoff)
    resend = Q(status=JobStatus.QUEUED) & _beat_before(cutoff)
    spent = Q(takeovers__gte=max_takeovers()) & (gone | (resend & Q(started__isnull=False)))
    acted = jobs.filter(spent).update(status=JobStatus.FAILED, finished=now, error=model.ERROR_LOST, claim=None)
    acted += jobs.filter(status=JobStatus.QUEUED, started__isnull=True, created__lt=now - model.queued_timeout).update(
        status=JobStatus.FAILED, finished=now, error=model.ERROR_NEVER_STARTED
    )
    with transaction.atomic():
        # SKIP LOCKED: a job whose chunk is committing right now is alive;
        # its commit renews the heartbeat, and the next sweep finds it fresh.
        ids = list(jobs.filter(gone | resend).select_for_update(skip_locked=True).values_list("pk", flat=True))
        if ids:
            locked = model._default_manager.filter(pk__in=ids)
            locked.filter(gone | (resend & Q(started__isnull=False))).update(
                status=JobStatus.QUEUED, claim=None, heartbeat_at=now, takeovers=F("takeovers") + 1
            )
            locked.filter(status=JobStatus.QUEUED, started__isnull=True).update(heartbeat_at=now)
            for pk in ids:
                job_send(model, pk)
    return acted + len(ids)


def job_models() -> list[type[ProgressJob]]:
    """Every concrete job model of the installed apps."""
    return [model for model in apps.get_models() if issubclass(model, ProgressJob)]


def all_jobs_sweep(*, now: datetime | None = None) -> int:
    """The one job sweep, over every job kind (run by beat)."""
    return sum(jobs_sweep(model, now=now) for model in job_models())
