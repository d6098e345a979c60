"""One lifecycle for every background job the pages poll (a batch, an API bulk
call, an organisation job or import, a report).

Every job row extends ``ProgressJob``: who asked, its ``status``, progress
(``done`` of ``total``), ``error``, timestamps and a heartbeat. A job moves
only through the helpers below, each one conditional UPDATE on the row:

- ``job_claim``: queued → running; True only for the one worker that got it,
  so a message delivered twice (``acks_late``, a redelivery) runs the job once.
- ``job_progress``: done/total, always with a fresh heartbeat.
- ``job_finish``: running → succeeded.
- ``job_fail``: → failed with a message (the error is never lost).
- ``jobs_fail_stale``: the one sweep, run by beat only (``fail_stale_jobs``
  in ``enrollment_site.celery``): a running job whose heartbeat is older than
  ``settings.JOBS_STALE_AFTER`` fails as lost, a queued one older than its
  kind's ``queued_timeout`` as never started.

How a runner treats errors, in every kind: the job ends failed with the
error's message. An expected refusal (a ``ValidationError``, a row the payload
names that is gone) ends there and the runner returns the job; any other
error is re-raised after the job is marked failed, so that the worker logs it
and a task may retry where a retry makes sense (reports on a transient
database error, through ``report_requeue``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

# A running job beats at least once per chunk and cannot outlive Celery's hard
# time limit (30 minutes), so a heartbeat older than that plus a margin means
# its worker is gone; a shorter threshold could fail a slow chunk still at work.
DEFAULT_STALE_AFTER = timedelta(minutes=32)


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


PENDING_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class ProgressJob(models.Model):
    Status = JobStatus
    PENDING_STATUSES = PENDING_STATUSES

    # What the sweep writes, per kind: the wording each page has always shown.
    ERROR_LOST = "The worker was lost or the job timed out."
    ERROR_NEVER_STARTED = "The job never started: is a worker running?"
    # A queued job no worker took within this long is failed rather than left
    # pending (a lost message, or no worker on its queue); it can be asked again.
    queued_timeout = timedelta(hours=6)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

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


def stale_after() -> timedelta:
    """How old a running job's heartbeat may get before the sweep fails it."""
    return getattr(settings, "JOBS_STALE_AFTER", DEFAULT_STALE_AFTER)


def job_claim(model: type[ProgressJob], pk: int, *, stale_after: timedelta | None = None, **fields) -> bool:
    """Move job ``pk`` from queued to running (started and heartbeat now, plus
    ``fields``); True only for the caller whose UPDATE matched.

    ``stale_after`` is where a takeover goes (issue 13): given, a running job
    whose heartbeat is older than that is claimed too, by the redelivered task
    of a worker that died. Without it only a queued job is claimed."""
    now = timezone.now()
    claimable = Q(status=JobStatus.QUEUED)
    if stale_after is not None:
        claimable |= Q(status=JobStatus.RUNNING) & _beat_before(now - stale_after)
    return bool(model._default_manager.filter(claimable, pk=pk).update(status=JobStatus.RUNNING, started=now, heartbeat_at=now, **fields))


def job_progress(model: type[ProgressJob], pk: int, *, done: int | None = None, total: int | None = None, **fields) -> None:
    """Record progress (``done``, ``total``, other ``fields``) on a running job,
    always with a heartbeat, which is what tells the sweep the job still works."""
    counts = {name: value for name, value in (("done", done), ("total", total)) if value is not None}
    model._default_manager.filter(pk=pk).update(**counts, **fields, heartbeat_at=timezone.now())


def job_finish(model: type[ProgressJob], pk: int, **fields) -> bool:
    """Mark a running job succeeded (with ``fields``, such as its result).
    False when it is no longer running (the sweep failed it meanwhile)."""
    now = timezone.now()
    return bool(model._default_manager.filter(pk=pk, status=JobStatus.RUNNING).update(status=JobStatus.SUCCEEDED, finished=now, heartbeat_at=now, **fields))


def job_fail(model: type[ProgressJob], pk: int, *, error: str) -> bool:
    """Mark a job failed with ``error`` (kept, up to 2000 characters): a queued
    or running one, or a failed one whose message is made more precise."""
    return bool(
        model._default_manager.filter(pk=pk, status__in=(*PENDING_STATUSES, JobStatus.FAILED)).update(
            status=JobStatus.FAILED, finished=timezone.now(), error=(error or "unknown error")[:2000]
        )
    )


def error_message(exc: BaseException) -> str:
    """What a failed job says about ``exc``: its message, or its class name."""
    messages = getattr(exc, "messages", None)  # a ValidationError's own list
    return (" ".join(messages) if messages else str(exc)) or exc.__class__.__name__


def _beat_before(cutoff: datetime) -> Q:
    # A job's last sign of life: its heartbeat, or its start before the first one.
    return Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started__lt=cutoff) | Q(
        heartbeat_at__isnull=True, started__isnull=True, created__lt=cutoff
    )


def jobs_fail_stale(model: type[ProgressJob], *, now: datetime | None = None, **only) -> int:
    """Fail this kind's jobs that would otherwise show as pending forever:
    running ones whose last heartbeat is older than ``stale_after()`` (the
    worker was killed, lost or timed out), queued ones older than the kind's
    ``queued_timeout``. A long job that still beats keeps running. ``only``
    narrows the rows (``pk=``)."""
    now = now or timezone.now()
    jobs = model._default_manager.filter(**only)
    lost = jobs.filter(_beat_before(now - stale_after()), status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED, finished=now, error=model.ERROR_LOST
    )
    never = jobs.filter(status=JobStatus.QUEUED, created__lt=now - model.queued_timeout).update(
        status=JobStatus.FAILED, finished=now, error=model.ERROR_NEVER_STARTED
    )
    return lost + never


def job_fail_if_stale(model: type[ProgressJob], pk: int, *, now: datetime | None = None) -> bool:
    """Fail job ``pk`` if the sweep would (its worker is lost, or it never
    started), for a request that this one pending job blocks; the sweep
    itself runs from beat only."""
    now = now or timezone.now()
    return bool(jobs_fail_stale(model, now=now, pk=pk))


def job_models() -> list[type[ProgressJob]]:
    """Every concrete job model of the installed apps."""
    return [model for model in apps.get_models() if issubclass(model, ProgressJob)]


def all_jobs_fail_stale(*, now: datetime | None = None) -> int:
    """The one stale-job sweep, over every job kind (run by beat)."""
    return sum(jobs_fail_stale(model, now=now) for model in job_models())
