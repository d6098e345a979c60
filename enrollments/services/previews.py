"""Kept previews of Membership batches: recorded, previewed by a worker when
the list is large, confirmed once, swept when abandoned.

- ``preview_record``: a list the request previewed (``enrollment_batch_preview``)
  is recorded finished, with what the page showed; the page makes it again
  on each view (``preview_show`` records the new one).
- ``preview_job_create`` / ``preview_job_run``: a list above
  ``ENROLLMENT_SYNC_LIMIT`` is previewed by a worker on the job lifecycle
  (claim, heartbeat, takeover): one set-based decide over the whole list,
  as the batch makes it, then its rows kept a chunk per transaction with
  progress.
- ``preview_confirm``: the one way a preview is applied. It claims the
  preview by one conditional UPDATE (``confirmed_at IS NULL``) in the
  transaction that applies it, so of two Confirms arriving together one
  applies and the other is told who confirmed it (``PreviewAlreadyConfirmed``);
  a stale preview (``PreviewStale``) rolls the claim back with everything else.
- ``previews_sweep``: previews and read uploads not confirmed within
  ``PREVIEW_KEEP_HOURS`` go, in a fixed number of queries; their files are
  deleted from storage once that commits.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.types import Actor, recorded_user
from courses.models import Course
from enrollment_site.lib.bulk import bulk_insert
from enrollment_site.lib.identifiers import parse_identifiers
from enrollment_site.lib.jobs import JobLost, error_message, job_chunk, job_claim, job_fail, job_finish, job_heartbeat, job_send

from .. import reasons
from ..models import BatchJob, MembershipPreview, MembershipPreviewRow, Source
from ..periods import PeriodRequest
from ..periods_asked import asked_from_json, asked_json
from .batch import check_identifier_count
from .batch_preview import (
    CHANGES_LISTED,
    BatchPreview,
    PreviewStale,
    changes_listed,
    enrollment_batch_preview,
    preview_differences,
)
from .jobs import batch_job_create, batch_job_run_inline

# Rows of a large preview kept per committed chunk.
ROWS_CHUNK = settings.ENROLLMENT_JOB_CHUNK


class PreviewExpired(Exception):
    """The preview is gone: swept after ``PREVIEW_KEEP_HOURS``, or it never existed."""


class PreviewAlreadyConfirmed(Exception):
    """Someone confirmed this preview first: ``preview`` says who, when, and its batch."""

    def __init__(self, preview: MembershipPreview):
        super().__init__(_("This preview was already confirmed."))
        self.preview = preview


def _options(*, course: Course, actor: Actor, action: str, auto_enroll: bool, email_students: bool, reason: str,
             upload: BatchJob | None, input_note: str, period: PeriodRequest | None = None) -> dict:
    return {
        "course": course, "requester": recorded_user(actor), "action": action, "auto_enroll": auto_enroll,
        "email_students": email_students, "reason": reason, "upload": upload, "input_note": input_note[:500], "period": asked_json(period),
    }


def preview_record(*, course: Course, actor: Actor, preview: BatchPreview, reason: str = "", upload: BatchJob | None = None,
                   input_note: str = "") -> MembershipPreview:
    """Record a preview made in the request (nothing else is written), to be
    shown again and confirmed by ``actor`` through its ``public_id``."""
    now = timezone.now()
    count = len(preview.results)
    return MembershipPreview.objects.create(
        **_options(course=course, actor=actor, action=preview.action, auto_enroll=preview.auto_enroll, email_students=preview.email_students,
                   reason=reason, upload=upload, input_note=input_note, period=preview.asked),
        in_request=True, status=MembershipPreview.Status.SUCCEEDED, total=count, done=count, started=now, finished=now,
        shown=_shown(preview), fingerprint=preview.fingerprint, summary=preview.summary, emails=preview.emails,
    )


def preview_show(pending: MembershipPreview, preview: BatchPreview) -> None:
    """Record ``preview`` (made again from the course) as what the page now
    shows of ``pending``, and so what its Confirm applies. A confirmed
    preview is left as it was."""
    pending.shown, pending.fingerprint = _shown(preview), preview.fingerprint
    MembershipPreview.objects.filter(pk=pending.pk, confirmed_at__isnull=True).update(
        shown=pending.shown, fingerprint=pending.fingerprint, summary=preview.summary, emails=preview.emails,
    )


def _shown(preview: BatchPreview) -> list[list[str]]:
    return [[r.identifier, str(r.outcome)] for r in preview.results]


@transaction.atomic
def preview_job_create(*, course: Course, actor: Actor, identifiers: list[str], action: str, auto_enroll: bool, email_students: bool,
                       reason: str = "", upload: BatchJob | None = None, input_note: str = "",
                       period: PeriodRequest | None = None) -> MembershipPreview:
    """Queue the preview of a list too large for the request (``identifiers``
    made distinct, as ``batch_job_create`` does); a worker runs it
    (``preview_job_run``). Nothing else is written. Raises TooManyIdentifiers above the cap."""
    identifiers = [ident.text for ident in parse_identifiers(identifiers)]
    check_identifier_count(len(identifiers))
    job = MembershipPreview.objects.create(
        **_options(course=course, actor=actor, action=action, auto_enroll=auto_enroll, email_students=email_students, reason=reason,
                   upload=upload, input_note=input_note, period=period),
        identifiers="\n".join(identifiers), total=len(identifiers),
    )
    job_send(MembershipPreview, job.pk)
    return job


def preview_job_run(*, job_id: int) -> MembershipPreview | None:
    """Preview a queued list: what its batch would do now, with nothing but
    the preview written. The outcomes come from one ``enrollment_batch_preview``
    over the whole list (the batch's own resolve and decide, a fixed number
    of queries), so they are what the confirmed batch, which applies the
    whole list at once, decides if the course has not changed. The rows are
    then kept a chunk per transaction with the job's progress. A run that
    takes over a dead one starts again from the first row (the course may
    have changed meanwhile, and the rows must be one preview's). Returns
    None when someone else holds the job."""
    run = job_claim(MembershipPreview, job_id)
    if run is None:
        return None
    job = MembershipPreview.objects.select_related("course").get(pk=job_id)
    try:
        with job_heartbeat(run):
            if run.position:
                with transaction.atomic():
                    MembershipPreviewRow.objects.filter(preview_id=job.pk).delete()
                    run.jobs().update(position=0, done=0, summary={})
                run.position = 0
            identifiers = [line for line in job.identifiers.splitlines() if line.strip()]
            preview = enrollment_batch_preview(
                course=job.course, identifiers=identifiers, action=job.action, auto_enroll=job.auto_enroll, email_students=job.email_students,
                period=asked_from_json(job.period),
            )
            _rows_store(job, preview, run=run)
            if not job_finish(run, total=len(preview.results), done=len(preview.results), fingerprint=preview.fingerprint,
                              summary=preview.summary, emails=preview.emails, team_unenrolled=preview.team_unenrolled,
                              over_cap=list(preview.over_cap) if preview.over_cap else None):
                return None
    except JobLost:
        return None
    except Exception as exc:
        job_fail(MembershipPreview, job.pk, error=error_message(exc), run=run)
        raise
    job.refresh_from_db()
    return job


def _rows_store(job: MembershipPreview, preview: BatchPreview, *, run=None) -> None:
    """Keep ``preview``'s rows for ``job``, a chunk per transaction (with
    ``run``'s progress), in one INSERT per chunk."""
    summary: Counter = Counter()
    results = preview.results
    for start in range(0, len(results), ROWS_CHUNK):
        chunk = results[start : start + ROWS_CHUNK]
        with job_chunk(run) as record:
            bulk_insert(MembershipPreviewRow, [
                {"preview_id": job.pk, "position": start + offset, "identifier": r.identifier, "outcome": str(r.outcome),
                 "username": r.username, "email": r.email, "note": r.note[:500]}
                for offset, r in enumerate(chunk)
            ])
            summary.update(str(r.outcome) for r in chunk)
            record.record(advance=len(chunk), summary=dict(summary))


def preview_renew(*, stale: MembershipPreview, preview: BatchPreview) -> MembershipPreview:
    """Keep ``preview`` (what the batch decided when it found ``stale``'s
    course changed) as the preview that replaces ``stale``, finished, for
    the same person to confirm instead."""
    now = timezone.now()
    with transaction.atomic():
        renewed = MembershipPreview.objects.create(
            course=stale.course, requester=stale.requester, action=stale.action, auto_enroll=stale.auto_enroll,
            email_students=stale.email_students, reason=stale.reason, input_note=stale.input_note, identifiers=stale.identifiers,
            status=MembershipPreview.Status.SUCCEEDED, total=len(preview.results), done=len(preview.results), started=now, finished=now,
            fingerprint=preview.fingerprint, summary=preview.summary, emails=preview.emails, team_unenrolled=preview.team_unenrolled,
            over_cap=list(preview.over_cap) if preview.over_cap else None, replaces=stale, period=stale.period,
        )
        _rows_store(renewed, preview)
    return renewed


@transaction.atomic
def preview_confirm(*, course: Course, public_id, actor: Actor) -> BatchJob:
    """Apply the preview ``public_id`` of ``course`` once: a list previewed in
    the request is applied now (``batch_job_run_inline``), a large one is
    queued as a batch job that applies the whole list at once or, if the
    course changed, nothing (``BatchJob.expected_fingerprint``).

    The preview is claimed first by one conditional UPDATE; a second Confirm
    waits for the first's transaction, then matches no row and raises
    ``PreviewAlreadyConfirmed``, writing nothing. ``PreviewStale`` (the
    course changed since the preview was shown) rolls everything back, the
    claim included; ``PreviewExpired`` when the preview is gone. The read
    upload the list came from is dropped, its file deleted after commit."""
    claimed = MembershipPreview.objects.filter(
        course=course, public_id=public_id, confirmed_at__isnull=True, status=MembershipPreview.Status.SUCCEEDED,
    ).update(confirmed_at=timezone.now(), confirmed_by=recorded_user(actor))
    pending = MembershipPreview.objects.select_related("confirmed_by", "batch_job").filter(course=course, public_id=public_id).first()
    if pending is None:
        raise PreviewExpired(_("This preview has expired."))
    if not claimed:
        if pending.confirmed_at is None:
            raise ValidationError(_("This preview is not ready yet: wait for it, then confirm."))
        raise PreviewAlreadyConfirmed(pending)
    options: dict[str, Any] = {
        "course": course, "action": pending.action, "auto_enroll": pending.auto_enroll, "email_students": pending.email_students,
        "actor": actor, "reason": pending.reason, "source": Source.BATCH, "input_note": pending.input_note,
        "expected_fingerprint": pending.fingerprint, "period": asked_from_json(pending.period),
    }
    if pending.in_request:
        job = batch_job_run_inline(identifiers=[identifier for identifier, _ in pending.shown], **options)
    else:
        job = batch_job_create(identifiers=pending.identifiers.splitlines(), **options)
    MembershipPreview.objects.filter(pk=pending.pk).update(batch_job=job, shown=[])
    if pending.upload_id is not None:
        _uploads_drop(BatchJob.objects.filter(pk=pending.upload_id))
    return job


def preview_stale_in_job(job: BatchJob, stale: PreviewStale) -> str:
    """A queued confirmed batch found its course changed: keep the new
    preview for its requester and answer the job's message (what changed)."""
    confirmed = MembershipPreview.objects.select_related("course", "requester").filter(batch_job=job).first()
    if confirmed is None:
        return reasons.PREVIEW_GONE
    shown = list(MembershipPreviewRow.objects.filter(preview=confirmed).values_list("identifier", "outcome"))
    with translation.override("en"):  # the job keeps its message in English; the page shows it translated
        changed = preview_differences(shown, stale.preview)
    preview_renew(stale=confirmed, preview=stale.preview)
    if not changed:
        return reasons.PREVIEW_RENEWED
    more = len(changed) - CHANGES_LISTED
    listed = changes_listed(changed) + (reasons.PREVIEW_CHANGED_MORE % {"n": f"{more:,}"} if more > 0 else "")
    return reasons.PREVIEW_CHANGED.english(len(changed), listed=listed)


def previews_sweep(*, now: datetime | None = None) -> tuple[int, int]:
    """Remove what nobody confirmed within ``PREVIEW_KEEP_HOURS``: previews
    (finished or failed, with their rows) and read uploads waiting for their
    column or their preview's Confirm (with their rows and files); previews
    confirmed that long ago keep only their record (who, when, which batch). Returns
    (previews, uploads) removed. A fixed number of queries whatever the
    numbers; the files are deleted from storage after commit, so a rollback
    never leaves a row without its file."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.PREVIEW_KEEP_HOURS)
    with transaction.atomic():
        old = MembershipPreview.objects.filter(confirmed_at__isnull=True, created__lt=cutoff).exclude(status__in=MembershipPreview.PENDING_STATUSES)
        MembershipPreviewRow.objects.filter(preview__in=old.values("pk")).delete()
        MembershipPreview.objects.filter(replaces__in=old.values("pk")).update(replaces=None)
        previews = MembershipPreview.objects.filter(pk__in=list(old.values_list("pk", flat=True))).delete()[0]
        # A confirmed preview stays (it answers a later Confirm with who confirmed it), without its list and rows.
        confirmed = MembershipPreview.objects.filter(confirmed_at__lt=cutoff)
        MembershipPreviewRow.objects.filter(preview__in=confirmed.values("pk")).delete()
        confirmed.exclude(identifiers="").update(identifiers="")
        reads = BatchJob.objects.filter(upload_rows__isnull=False, input_note="", created__lt=cutoff)
        uploads = _uploads_drop(reads)
    return previews, uploads


def _uploads_drop(reads) -> int:
    """Delete the read uploads ``reads`` (a BatchJob queryset) in a fixed number
    of queries, their files from storage once the transaction commits."""
    names = [name for name in reads.values_list("upload", flat=True) if name]
    ids = list(reads.values_list("pk", flat=True))
    if not ids:
        return 0
    MembershipPreview.objects.filter(upload_id__in=ids).update(upload=None)
    dropped = BatchJob.objects.filter(pk__in=ids).delete()[1].get(BatchJob._meta.label, 0)
    transaction.on_commit(partial(_files_delete, names))
    return dropped


def _files_delete(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)

