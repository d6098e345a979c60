"""The learners table's actions: unenroll, enroll again, change mode, move to a cohort, extend access.

``roster_apply`` applies one action to chosen enrollments of one course, as
resolve → lock → decide → write: the enrollments are locked with their
learners, the pure ``roster_decide`` (``roster_decide.py``) says what changes,
and the batch's own write step (``batch_changes_write``) deactivates,
reactivates, removes allowances, audits and queues the emails, so a row action
and a batch change, audit and mail alike. A chunk costs a fixed number of
queries whatever its size.

Up to ``ENROLLMENT_SYNC_LIMIT`` rows run in the request, all or nothing: a
chosen id that is not an enrollment of the course (another course's, a guessed
or a stale one) or a row the action cannot take refuses the whole action, with
the reasons, and nothing is written. More rows are checked the same way and
then queued as a ``RosterJob`` that a worker runs a chunk per transaction
(``roster_job_run``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.types import Actor, recorded_user
from courses.models import MAX_DURATION_DAYS, Cohort, CohortMembership, Course
from courses.rules import can_manage_course
from enrollment_site.lib import lookups  # noqa: F401 (registers __any_of)
from enrollment_site.lib.emails import email_key
from enrollment_site.lib.jobs import JobLost, error_message, job_chunk, job_claim, job_fail, job_finish, job_heartbeat
from enrollment_site.lib.tasks import enqueue_on_commit

from ..models import Allowance, Enrollment, RosterAction, RosterJob, Source
from .batch import batch_changes_write
from .batch_decide import ENROLL, UNENROLL, BatchRequest
from .locks import course_write_lock
from .roster_decide import REFUSALS_LISTED, RosterChanges, RosterRequest, RosterRow, roster_decide
from .roster_preview import RosterPreviewStale, roster_fingerprint, roster_preview

__all__ = [
    "ROSTER_CHUNK", "RosterAction", "RosterPreviewStale", "RosterResult", "roster_apply", "roster_job_run", "roster_preview", "roster_result_message",
]

# Rows per transaction in a job; also the size of each lookup of a large selection.
ROSTER_CHUNK = 5_000


@dataclass
class RosterResult:
    """What ``roster_apply`` did. With ``refused`` non-empty nothing was
    changed (``refused`` lists the first reasons, ``refused_count`` counts
    them all); with ``job`` set the action was queued and the counts are the
    job's to tell."""

    changed: int = 0
    unchanged: int = 0
    refused: list[str] = field(default_factory=list)
    job: RosterJob | None = None
    refused_count: int = 0
    operation_id: uuid.UUID | None = None


def roster_apply(
    *,
    actor: Actor,
    course: Course,
    action: str,
    enrollment_ids: Iterable[int],
    mode: str = "",
    cohort: Cohort | None = None,
    reason: str = "",
    email_students: bool = True,
    extend_days: int | None = None,
    extend_until: datetime | None = None,
    expected_fingerprint: str | None = None,
) -> RosterResult:
    """Apply ``action`` (a ``RosterAction``) to the course's enrollments with
    these ids, audited with ``reason`` under one operation id.

    ``mode`` is the mode to change to (one of the course's modes) and
    ``cohort`` the cohort to move to (one of the course's; None for no cohort).
    Extend takes exactly one of ``extend_days`` (1 to 3650, added to each end,
    or to now once it has passed) and ``extend_until`` (a new end, after now).
    Unenroll and enroll again email each learner changed when ``email_students``.
    An unknown action, mode or cohort raises ValidationError; an actor who may
    not manage the course, PermissionDenied. Ids that are not the course's
    enrollments refuse the whole action (nothing written, see RosterResult).
    Above ``ENROLLMENT_SYNC_LIMIT`` distinct ids the action is checked the same
    way, then queued as a job (returned in ``job``) once this commits.

    With ``expected_fingerprint`` (a confirmed ``roster_preview``'s) the rows
    are decided again (under their locks, in the request) and nothing is
    written unless every row's outcome is the preview's: ``RosterPreviewStale``
    otherwise. A job is checked when it is queued; a row changed after that is
    decided again when its chunk runs."""
    if not can_manage_course(actor, course):
        raise PermissionDenied(_("You may not change this course's learners."))
    ids = _distinct_ids(enrollment_ids)
    request = _request(actor=actor, course=course, action=action, mode=mode, cohort=cohort, reason=reason, email_students=email_students,
                       extend_days=extend_days, extend_until=extend_until)
    if len(ids) > settings.ENROLLMENT_SYNC_LIMIT:
        if expected_fingerprint is not None:
            now = roster_preview(course=course, action=action, enrollment_ids=ids, mode=mode, cohort=cohort, email_students=email_students,
                                 extend_days=extend_days, extend_until=extend_until)
            if now.fingerprint != expected_fingerprint:
                raise RosterPreviewStale()
        return _job_create(course=course, request=request, ids=ids, cohort=cohort, actor=actor)
    with transaction.atomic():
        changes, refused, refused_count = _apply_chunk(course=course, request=request, ids=ids, all_or_nothing=True,
                                                       expected_fingerprint=expected_fingerprint)
    if refused_count:
        return RosterResult(refused=refused, refused_count=refused_count)
    return RosterResult(changed=changes.changed, unchanged=changes.unchanged, operation_id=request.operation_id)


def _distinct_ids(enrollment_ids: Iterable[int]) -> list[int]:
    try:
        ids = sorted({int(i) for i in enrollment_ids})
    except (TypeError, ValueError) as exc:
        raise ValidationError(_("The selection holds something that is not a row of the learners table; nothing was changed.")) from exc
    if not ids:
        raise ValidationError(_("Choose at least one learner; nothing was changed."))
    return ids


def _request(*, actor: Actor, course: Course, action: str, mode: str, cohort: Cohort | None, reason: str,
             email_students: bool, operation_id: uuid.UUID | None = None, extend_days: int | None = None,
             extend_until: datetime | None = None, queued: bool = False) -> RosterRequest:
    """The validated request: the action is known, the mode one of the course's,
    the cohort the course's own, an extension either some days (1 to 3650) or a
    new end after now (checked when asked; a job decides each row again)."""
    now = timezone.now()
    if action not in RosterAction.values:
        raise ValidationError(_("Unknown action %(action)s; use one of %(choices)s.") % {"action": repr(action), "choices": ", ".join(RosterAction.values)})
    if action == RosterAction.CHANGE_MODE and mode not in course.mode_list:
        raise ValidationError(
            _("%(mode)s is not one of this course's modes (%(modes)s); nothing was changed.")
            % {"mode": mode or _("No mode"), "modes": ", ".join(course.mode_list)}
        )
    if action == RosterAction.MOVE_COHORT and cohort is not None and cohort.course_id != course.pk:
        raise ValidationError(_("The cohort %(name)s is not one of this course's; nothing was changed.") % {"name": cohort.name})
    if action == RosterAction.EXTEND:
        if (extend_days is None) == (extend_until is None):
            raise ValidationError(_("Extend by a number of days or until a date (one of the two); nothing was changed."))
        if extend_days is not None and not 1 <= extend_days <= MAX_DURATION_DAYS:
            raise ValidationError(_("Extend by 1 to %(max)s days (ten years); nothing was changed.") % {"max": MAX_DURATION_DAYS})
        if extend_until is not None and extend_until <= now and not queued:
            raise ValidationError(_("The new end of access has passed already: choose a later date; nothing was changed."))
    else:
        extend_days = extend_until = None
    user = recorded_user(actor)
    return RosterRequest(
        action=action, course_id=course.pk, mode=mode if action == RosterAction.CHANGE_MODE else "",
        cohort_id=cohort.pk if action == RosterAction.MOVE_COHORT and cohort is not None else None,
        cohort_name=cohort.name if action == RosterAction.MOVE_COHORT and cohort is not None else "",
        reason=(reason or "").strip(), email_students=email_students, source=Source.ROSTER,
        operation_id=operation_id or uuid.uuid4(), actor_id=user.pk if user is not None else None, now=now,
        extend_days=extend_days, extend_until=extend_until,
    )


# --- one chunk: lock → decide → write, a fixed number of queries --------------------------------


def _apply_chunk(*, course: Course, request: RosterRequest, ids: list[int], all_or_nothing: bool,
                 expected_fingerprint: str | None = None) -> tuple[RosterChanges, list[str], int]:
    """Apply the action to one chunk of ids inside the caller's transaction.
    Returns the changes, the refusals listed and their count; with
    ``all_or_nothing`` any refusal leaves the chunk unwritten; with
    ``expected_fingerprint``, outcomes other than the preview's raise
    ``RosterPreviewStale`` before anything is written."""
    course_write_lock([course.pk])  # before any read the chunk is decided on (locks.py)
    if request.action == RosterAction.MOVE_COHORT and request.cohort_id is not None:
        # The target cohort locked first, as cohort_delete locks it: a move and a
        # deletion of its cohort queue, and a move after it is refused rather than
        # failing on a membership of a cohort no longer there.
        if not Cohort.objects.select_for_update().filter(pk=request.cohort_id).exists():
            raise ValidationError(_("The cohort %(name)s was deleted meanwhile; nothing was changed.") % {"name": request.cohort_name})
    rows = _lock(course=course, ids=ids, action=request.action)
    changes = roster_decide(request=request, rows=rows)
    missing = len(ids) - len(rows)
    if expected_fingerprint is not None:
        outcomes = [(row.enrollment_id, key) for row, key in changes.outcomes]
        if roster_fingerprint(request, [*outcomes, (0, f"missing:{missing}")]) != expected_fingerprint:
            raise RosterPreviewStale()
    refused = changes.refused
    if missing:
        found = {row.enrollment_id for row in rows}
        refused = [_not_here(i) for i in ids if i not in found][:REFUSALS_LISTED] + refused
    refused_count = missing + len(changes.refused)
    if refused_count and all_or_nothing:
        return changes, refused[:REFUSALS_LISTED], refused_count
    _write(course=course, request=request, changes=changes)
    return changes, refused[:REFUSALS_LISTED], refused_count


def _not_here(enrollment_id: int) -> str:
    # No name: the id may be another course's, whose learners are not the caller's to know.
    return f"row {enrollment_id}: not an enrollment of this course (removed, or of another course)"


def _lock(*, course: Course, ids: list[int], action: str, for_update: bool = True) -> list[RosterRow]:
    """The chosen enrollments of this course with their learners, their cohort
    and (for unenroll) whether an allowance exists for their email; with
    ``for_update`` (not for a preview) the enrollment rows locked until the
    transaction ends. Three queries at most."""
    # In user-id order, as the batch locks them: a row action and a batch over
    # the same learners queue behind each other instead of deadlocking.
    enrollments = Enrollment.objects.select_for_update(of=("self",)) if for_update else Enrollment.objects.all()
    locked = list(
        enrollments
        .filter(course=course, pk__any_of=ids)
        .order_by("user_id")
        .values_list("pk", "user_id", "user__username", "user__email", "user__first_name", "user__last_name", "user__is_active", "is_active", "mode",
                     "access_from", "access_until")
    )
    if not locked:
        return []
    user_ids = [row[1] for row in locked]
    cohorts = dict(
        CohortMembership.objects.filter(course=course, user_id__any_of=user_ids).values_list("user_id", "cohort__name")
    )
    allowed: set[str] = set()
    if action == RosterAction.UNENROLL:
        # Unenrolling removes the learner's allowance too, as the batch does, so
        # that activating another account with the address does not bring them back.
        allowances = Allowance.objects.select_for_update() if for_update else Allowance.objects.all()
        allowed = set(
            allowances
            .filter(course=course, email_key__any_of=[email_key(row[3]) for row in locked])
            .order_by("email_key")
            .values_list("email_key", flat=True)
        )
    return [
        RosterRow(
            enrollment_id=pk, user_id=user_id, username=username, email=email,
            display_name=f"{first} {last}".strip() or username, account_active=account_active,
            is_active=is_active, mode=mode, cohort=cohorts.get(user_id, ""), has_allowance=email_key(email) in allowed,
            access_from=access_from, access_until=access_until,
        )
        for pk, user_id, username, email, first, last, account_active, is_active, mode, access_from, access_until in locked
    ]


def _write(*, course: Course, request: RosterRequest, changes: RosterChanges) -> None:
    """One statement per kind of change: the batch's writes (enrollments,
    allowances, audit entries, outbox), then the mode or the cohort."""
    batch_request = BatchRequest(
        action=UNENROLL if request.action == RosterAction.UNENROLL else ENROLL, auto_enroll=False,
        email_students=request.email_students, course_id=request.course_id, default_mode=course.default_mode,
        source=request.source, reason=request.reason, operation_id=request.operation_id, actor_id=request.actor_id, now=request.now,
    )
    batch_changes_write(course=course, request=batch_request, changes=changes.batch)
    if changes.mode_ids:
        Enrollment.objects.filter(pk__any_of=changes.mode_ids).update(mode=request.mode, updated=request.now)
    if changes.extend_ids:
        # One statement for every row: the same end, or each end (or now, once passed) plus the days,
        # computed as roster_decide's extended_end computes what the audit says.
        end = (Value(request.extend_until) if request.extend_until is not None
               else Greatest("access_until", Value(request.now)) + Value(timedelta(days=request.extend_days or 0)))
        Enrollment.objects.filter(pk__any_of=changes.extend_ids).update(is_active=True, access_until=end, updated=request.now)
    if changes.cohort_user_ids:
        if request.cohort_id is None:
            CohortMembership.objects.filter(course=course, user_id__any_of=changes.cohort_user_ids).delete()
        else:
            # An upsert: a learner is in at most one cohort per course, so joining moves them.
            CohortMembership.objects.bulk_create(
                [CohortMembership(cohort_id=request.cohort_id, course=course, user_id=u, created=request.now) for u in changes.cohort_user_ids],
                update_conflicts=True, unique_fields=["user", "course"], update_fields=["cohort"],
            )


# --- more than ENROLLMENT_SYNC_LIMIT rows: a job --------------------------------------------


def _job_create(*, course: Course, request: RosterRequest, ids: list[int], cohort: Cohort | None, actor: Actor) -> RosterResult:
    """Check the whole selection as the request path would (nothing queued on
    a refusal), then record the job and queue it after commit."""
    refused: list[str] = []
    refused_count = 0
    for start in range(0, len(ids), ROSTER_CHUNK):
        chunk_refused, chunk_count = _refusals(course=course, ids=ids[start : start + ROSTER_CHUNK], action=request.action)
        refused += chunk_refused[: REFUSALS_LISTED - len(refused)]
        refused_count += chunk_count
    if refused_count:
        return RosterResult(refused=refused, refused_count=refused_count)
    with transaction.atomic():
        job = RosterJob.objects.create(
            course=course, requester=recorded_user(actor), action=request.action, mode=request.mode,
            extend_days=request.extend_days, extend_until=request.extend_until,
            cohort=cohort if request.cohort_id else None, cohort_name=request.cohort_name, reason=request.reason,
            email_students=request.email_students, operation_id=request.operation_id, enrollment_ids=ids, total=len(ids),
            summary={"changed": 0, "unchanged": 0, "refused": 0},
        )
        from ..tasks import run_roster_job

        enqueue_on_commit(run_roster_job, job.pk)
    return RosterResult(job=job, operation_id=request.operation_id)


def _refusals(*, course: Course, ids: list[int], action: str) -> tuple[list[str], int]:
    """The refusals one chunk of a large selection would meet, without locking.
    One query (a second one only to name deactivated accounts for enroll again)."""
    rows = Enrollment.objects.filter(course=course, pk__any_of=ids)
    if action == RosterAction.ENROLL_AGAIN:
        rows = rows.exclude(is_active=False, user__is_active=False)
    found = set(rows.values_list("pk", flat=True))
    if len(found) == len(ids):
        return [], 0
    missing = [i for i in ids if i not in found]
    deactivated: dict[int, str] = {}
    if action == RosterAction.ENROLL_AGAIN:
        # Tell a deactivated account apart from a row that is not here.
        deactivated = dict(
            Enrollment.objects.filter(course=course, pk__any_of=missing, is_active=False, user__is_active=False).values_list("pk", "user__username")
        )
    refused = [
        f"{deactivated[i]}: the account is deactivated, so it cannot be enrolled again" if i in deactivated else _not_here(i) for i in missing
    ]
    return refused[:REFUSALS_LISTED], len(refused)


def roster_job_run(*, job_id: int) -> RosterJob | None:
    """Run a queued learners-table job, a chunk of ``ROSTER_CHUNK`` rows per
    transaction (``enrollment_site.lib.jobs``): each chunk commits its changes
    with the job's position, ``summary`` and ``refused``, so progress is exact
    and a job whose worker died is taken over and resumes after the last
    committed chunk without counting, auditing or mailing a row twice.

    Returns None when another run has the job. The requester must still
    manage the course, and a target cohort must still exist: otherwise the job
    fails with the reason (chunks already done stay done). Rows that cannot
    take the action by the time their chunk runs (changed meanwhile) are left
    alone and counted as refused, with the first reasons kept on the job."""
    run = job_claim(RosterJob, job_id)
    if run is None:
        return None
    job = RosterJob.objects.select_related("course", "requester", "cohort").get(pk=job_id)
    try:
        with job_heartbeat(run):
            _job_check(job)
            request = _request(
                actor=job.requester, course=job.course, action=job.action, mode=job.mode, cohort=job.cohort, reason=job.reason,
                email_students=job.email_students, operation_id=job.operation_id, extend_days=job.extend_days,
                extend_until=job.extend_until, queued=True,
            )
            ids = job.enrollment_ids
            # What the committed chunks (of this run or a dead predecessor) counted.
            summary = {"changed": 0, "unchanged": 0, "refused": 0, **job.summary}
            kept = list(job.refused)
            for start in range(run.position, len(ids), ROSTER_CHUNK):
                chunk = ids[start : start + ROSTER_CHUNK]
                with job_chunk(run) as record:
                    changes, refused, refused_count = _apply_chunk(course=job.course, request=request, ids=chunk, all_or_nothing=False)
                    summary["changed"] += changes.changed
                    summary["unchanged"] += changes.unchanged
                    summary["refused"] += refused_count
                    kept = (kept + refused)[:REFUSALS_LISTED]
                    record.record(advance=len(chunk), summary=dict(summary), refused=kept)
            finished = job_finish(run)
    except JobLost:
        return None  # taken over: the job is its successor's
    except ValidationError as exc:
        job_fail(RosterJob, job.pk, error=error_message(exc), run=run)
        job.refresh_from_db()
        return job
    except Exception as exc:
        job_fail(RosterJob, job.pk, error=error_message(exc), run=run)
        raise
    if not finished:
        return None
    job.refresh_from_db()
    return job


def _job_check(job: RosterJob) -> None:
    if job.requester is None or not can_manage_course(job.requester, job.course):
        raise ValidationError(_("The person who asked for this may no longer manage the course; nothing more was changed."))
    if job.action == RosterAction.MOVE_COHORT and job.cohort_name and job.cohort is None:
        raise ValidationError(_("The cohort %(name)s was deleted before the job ran; nothing more was changed.") % {"name": job.cohort_name})


def roster_result_message(result: RosterResult, *, action: str) -> str:
    """How a page says what an action in the request did (or why it did nothing)."""
    if result.refused_count:
        return ngettext(
            "Nothing was changed: %(count)s row cannot take this action (%(why)s).",
            "Nothing was changed: %(count)s rows cannot take this action (%(why)s).",
            result.refused_count,
        ) % {"count": number_format(result.refused_count, force_grouping=True), "why": "; ".join(result.refused)}
    label = RosterAction(action).label.lower()
    text = ngettext("%(action)s: %(count)s learner changed", "%(action)s: %(count)s learners changed", result.changed) % {
        "action": label.capitalize(), "count": number_format(result.changed, force_grouping=True),
    }
    if result.unchanged:
        text += ngettext(", %(count)s already so", ", %(count)s already so", result.unchanged) % {
            "count": number_format(result.unchanged, force_grouping=True),
        }
    return text + "."
