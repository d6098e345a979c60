"""Undo of a manual operation: put everyone it changed back as they were.

Any operation audited under an ``operation_id`` (a Membership batch or file,
an API bulk call, a learners-table action, an import, an assignment or rule
application, a unit membership change) can be undone for ``UNDO_DAYS`` days.
``undo_preview`` says what undo would restore, writing nothing;
``operation_undo`` does it, as resolve → lock → decide → write: the
operation's audit rows, what was audited since and everyone's current rows
are read (the current rows locked), the pure ``undo_decide``
(``undo_decide.py``) says what changes, and each kind of write is one bulk
statement. The undo is an operation of its own (source ``undo``, its rows'
``undoes`` naming the operation undone), so it can be undone in turn.

A person changed by something later than the operation (a later audit row in
the course, or a state that is no longer the one the operation left) is left
alone and listed, never overwritten. The number of queries does not depend
on the operation's size (on PostgreSQL; SQLite splits bulk statements by its
parameter limit).

An organisation operation (an assignment, a rule application, an import, a
unit membership change) is one operation id across several courses: its undo
restores every course it changed, in one transaction (or one job), and only
for someone who may manage all of them. Each course costs a fixed number of
queries. Other apps restore what they keep about an operation (the
organisation's ``EnrollmentOrigin`` rows) on the ``operation_undone`` signal,
sent in the undo's transaction for each course.

An undo of more than ``ENROLLMENT_SYNC_LIMIT`` people runs as an ``UndoJob``
(``undo_start`` queues it, ``undo_job_run`` runs it): ``UNDO_CHUNK`` people per
transaction, each chunk resolving, locking, deciding and writing its people
as the request path does, committed with the job's position, so that a job
taken over resumes after its last committed chunk.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.types import Actor, recorded_user
from courses.models import Cohort, CohortMembership, Course
from courses.rules import can_manage_course
from enrollment_site.lib import lookups  # noqa: F401 (registers __any_of)
from enrollment_site.lib.bulk import bulk_insert
from enrollment_site.lib.emails import email_key
from enrollment_site.lib.jobs import JobLost, error_message, job_chunk, job_claim, job_fail, job_finish, job_heartbeat
from enrollment_site.lib.tasks import enqueue_on_commit

from .. import reasons
from ..models import Allowance, Enrollment, EnrollmentAudit, Notification, Source, State, UndoJob
from ..notifications import MessageBuilder
from .locks import course_write_lock
from .undo_decide import Current, LaterChange, LeftAlone, OperationRow, PersonKey, Restore, UndoPlan, UndoRequest, undo_decide

__all__ = ["UNDO_CHUNK", "UndoPreview", "operation_undo", "operation_undone", "undo_job_run", "undo_preview", "undo_start"]

# People restored per transaction by an undo job.
UNDO_CHUNK = 2_000
# Left-alone people kept on an undo job (with why); the rest are counted.
LEFT_ALONE_KEPT = 50

# Sent in the undo's transaction once a course's people are restored, with
# ``course_id``, ``operation_id`` (the operation undone), ``undo_operation_id``
# and ``user_ids`` (the accounts restored): a higher app restores what it
# recorded about the operation for them.
operation_undone = Signal()

# An operation's audit rows, by course id.
Parts = dict[int, list[OperationRow]]


@dataclass(frozen=True)
class UndoCoursePart:
    """What undo does in one course of a multi-course operation."""

    course: Course
    restores: list[Restore]
    left_alone: list[LeftAlone]
    unchanged: int


@dataclass
class UndoPreview:
    """What undoing an operation would do (or, from ``operation_undo``, did).

    ``refusal`` says why it cannot be undone (too old, already undone), else
    is blank; ``undo_operation_id`` is set once the undo is done."""

    operation_id: uuid.UUID
    source: str
    actor: str
    first: datetime.datetime
    changes: int
    plan: UndoPlan
    refusal: str = ""
    undo_operation_id: uuid.UUID | None = None
    # The courses the operation changed, when more than the page's own, and the plan of each (``plan`` is their sum).
    courses: list[Course] = field(default_factory=list)
    parts: list[UndoCoursePart] = field(default_factory=list)

    @property
    def source_label(self) -> str:
        return str(Source(self.source).label) if self.source in Source.values else self.source


def undo_preview(*, course: Course, operation_id: uuid.UUID, viewer: Actor = None) -> UndoPreview | None:
    """What undoing the course's operation ``operation_id`` would restore and
    whom it would leave alone (in every course the operation changed), with
    nothing written; None when the course has no such operation (another
    course's operation is none of this one's). With ``viewer``, an operation
    that also changed courses they may not manage is refused."""
    return _undo(course=course, operation_id=operation_id, actor=viewer, email_students=False, write=False)


@transaction.atomic
def operation_undo(*, course: Course, operation_id: uuid.UUID, actor: Actor, email_students: bool = False) -> UndoPreview | None:
    """Undo the course's operation ``operation_id``: restore each person it
    changed to their state before it (enrollment active or not, mode, cohort,
    invitation and its auto-enroll flag), audited as a new operation with
    source ``undo``; leave alone, and list, anyone changed since. With
    ``email_students`` each person whose state is restored gets one email
    saying so (none by default). None when the course has no such operation;
    ``ValidationError`` when it may no longer be undone (older than
    ``UNDO_DAYS``, or undone already); ``PermissionDenied`` for an actor who
    may not manage the course."""
    if actor is None or not can_manage_course(actor, course):
        raise PermissionDenied(_("Only the course team may undo its operations."))
    # The write lock of every course the operation changed, before the reads, so
    # that the state decided on is still the state written to (``locks.py``).
    course_write_lock(_operation_course_ids(operation_id))
    _lock_operation(operation_id)
    preview = _undo(course=course, operation_id=operation_id, actor=actor, email_students=email_students, write=True)
    if preview is not None and preview.refusal:
        raise ValidationError(preview.refusal)
    return preview


def undo_start(*, course: Course, operation_id: uuid.UUID, actor: Actor, email_students: bool = False) -> UndoPreview | UndoJob | None:
    """Confirm an undo: done at once (``operation_undo``, answering what it
    did) when the operation touched at most ``ENROLLMENT_SYNC_LIMIT`` people;
    otherwise an ``UndoJob`` is recorded and queued after commit, and
    answered. None, ``ValidationError`` and ``PermissionDenied`` as for
    ``operation_undo`` (checked before anything is queued)."""
    parts, _meta = _operation_rows(course=course, operation_id=operation_id)
    if not parts:
        return None
    people = sum(len({row.key for row in rows}) for rows in parts.values())
    if people <= settings.ENROLLMENT_SYNC_LIMIT:
        return operation_undo(course=course, operation_id=operation_id, actor=actor, email_students=email_students)
    if actor is None or not can_manage_course(actor, course):
        raise PermissionDenied(_("Only the course team may undo its operations."))
    with transaction.atomic():
        course_write_lock(sorted(parts))
        _lock_operation(operation_id)
        refusal = _refusal(operation_id=operation_id, first=_first(parts), now=timezone.now(),
                           courses=_courses(parts), actor=actor)
        if refusal:
            raise ValidationError(refusal)
        job = UndoJob.objects.create(
            course=course, requester=recorded_user(actor), operation_id=operation_id, email_students=email_students, total=people,
            summary={"restored": 0, "unchanged": 0, "left_alone": 0},
        )
        from ..tasks import run_undo_job

        enqueue_on_commit(run_undo_job, job.pk)
    return job


def undo_job_run(*, job_id: int) -> UndoJob | None:
    """Run a queued undo job, ``UNDO_CHUNK`` people per transaction
    (``enrollment_site.lib.jobs``): each chunk locks its people's rows,
    decides who is restored and who was changed since, writes, and commits
    that with the job's position, ``summary`` and ``left_alone``; a job whose
    worker died resumes after the last committed chunk, restoring nobody
    twice. All chunks audit under the job's ``undo_operation_id``, so the
    undo can itself be undone.

    Returns None when another run has the job. The requester must still
    manage the course, or the job fails saying so (chunks done stay done)."""
    run = job_claim(UndoJob, job_id)
    if run is None:
        return None
    job = UndoJob.objects.select_related("course", "requester").get(pk=job_id)
    try:
        with job_heartbeat(run):
            parts, _meta = _operation_rows(course=job.course, operation_id=job.operation_id)
            courses = _courses(parts)
            if job.requester is None or not all(can_manage_course(job.requester, c) for c in courses.values()):
                raise ValidationError(_("The person who asked for this undo may no longer manage the course; nothing more was restored."))
            summary = {"restored": 0, "unchanged": 0, "left_alone": 0, **job.summary}
            kept = list(job.left_alone)
            done = 0
            for course_id, chunk in _chunks(parts):
                people = len({row.key for row in chunk})
                done += people
                if done <= run.position:
                    continue  # committed by an earlier run
                course = courses[course_id]
                with job_chunk(run) as record:
                    course_write_lock([course.pk])
                    request = _request(course=course, operation_id=job.operation_id, undo_operation_id=job.undo_operation_id,
                                       actor=job.requester, email_students=job.email_students)
                    plan, cohorts = _plan(course=course, operation_id=job.operation_id, rows=chunk, request=request, lock=True)
                    _write(course=course, request=request, plan=plan, cohorts=cohorts)
                    summary["restored"] += len(plan.restores)
                    summary["unchanged"] += plan.unchanged
                    summary["left_alone"] += len(plan.left_alone)
                    if plan.end_removed:  # only when someone got their access back (``undo_decide._reopened``)
                        summary["end_removed"] = summary.get("end_removed", 0) + len(plan.end_removed)
                    kept = (kept + [f"{p.identifier}: {p.why}" for p in plan.left_alone])[:LEFT_ALONE_KEPT]
                    record.record(advance=people, summary=dict(summary), left_alone=kept)
            finished = job_finish(run)
    except JobLost:
        return None  # taken over: the job is its successor's
    except ValidationError as exc:
        job_fail(UndoJob, job.pk, error=error_message(exc), run=run)
        job.refresh_from_db()
        return job
    except Exception as exc:
        job_fail(UndoJob, job.pk, error=error_message(exc), run=run)
        raise
    if not finished:
        return None
    job.refresh_from_db()
    return job


def _chunks(parts: Parts) -> list[tuple[int, list[OperationRow]]]:
    """The operation's rows split by course (in course-id order) and person,
    ``UNDO_CHUNK`` people per chunk (in the order each person first appears),
    each chunk's rows in the order written: one pass, so resuming is cheap."""
    chunks: list[tuple[int, list[OperationRow]]] = []
    for course_id in sorted(parts):
        chunk_of: dict[PersonKey, int] = {}
        first = len(chunks)
        for row in parts[course_id]:
            if row.key not in chunk_of:
                chunk_of[row.key] = first + len(chunk_of) // UNDO_CHUNK
                if chunk_of[row.key] == len(chunks):
                    chunks.append((course_id, []))
            chunks[chunk_of[row.key]][1].append(row)
    return chunks


def _request(*, course: Course, operation_id: uuid.UUID, undo_operation_id: uuid.UUID, actor: Actor, email_students: bool) -> UndoRequest:
    return UndoRequest(
        course_id=course.pk, operation_id=operation_id, undo_operation_id=undo_operation_id, actor_id=getattr(actor, "pk", None),
        now=timezone.now(), default_mode=course.default_mode, email_students=email_students, reason=reasons.UNDO % {"operation": operation_id},
    )


def _plan(*, course: Course, operation_id: uuid.UUID, rows: list[OperationRow], request: UndoRequest, lock: bool) -> tuple[UndoPlan, dict[str, int]]:
    """Decide the undo of ``rows`` (all of an operation, or one chunk of its people)."""
    current, cohorts = _current(course=course, rows=rows, lock=lock)
    later = _later(course=course, operation_id=operation_id, rows=rows)
    return undo_decide(request=request, rows=rows, later=later, current=current, cohorts=set(cohorts)), cohorts


def _undo(*, course: Course, operation_id: uuid.UUID, actor: Actor, email_students: bool, write: bool) -> UndoPreview | None:
    parts, meta = _operation_rows(course=course, operation_id=operation_id)
    if not parts:
        return None
    courses = _courses(parts)
    undo_operation_id = uuid.uuid4()
    plan = UndoPlan()
    decided = []
    # Course-id order, as every multi-course write locks, so that two writers never deadlock.
    for course_id in sorted(parts):
        one = courses[course_id]
        request = _request(course=one, operation_id=operation_id, undo_operation_id=undo_operation_id, actor=actor, email_students=email_students)
        part, cohorts = _plan(course=one, operation_id=operation_id, rows=parts[course_id], request=request, lock=write)
        decided.append((one, request, part, cohorts))
        plan.restores += part.restores
        plan.left_alone += part.left_alone
        plan.unchanged += part.unchanged
        plan.end_removed += part.end_removed
    first = _first(parts)
    preview = UndoPreview(operation_id=operation_id, plan=plan, first=first, changes=sum(len(rows) for rows in parts.values()), **meta)
    if len(courses) > 1:
        preview.courses = [courses[pk] for pk in sorted(courses)]
        preview.parts = [UndoCoursePart(one, part.restores, part.left_alone, part.unchanged) for one, _request, part, _cohorts in decided]
    preview.refusal = _refusal(operation_id=operation_id, first=first, now=timezone.now(), courses=courses, actor=actor)
    if write and not preview.refusal:
        for one, request, part, cohorts in decided:
            _write(course=one, request=request, plan=part, cohorts=cohorts)
        preview.undo_operation_id = undo_operation_id
    return preview


def _lock_operation(operation_id: uuid.UUID) -> None:
    """Hold the operation until commit (PostgreSQL). The race: two undos of
    one operation at once, both finding it not undone yet. Locking its
    people's rows is not enough, as an undo may only insert (a withdrawn
    invitation has no row left to lock); the second undo waits here, then
    finds the first's rows and is refused."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [operation_id.int >> 65])


def _operation_course_ids(operation_id: uuid.UUID):
    """The courses an operation changed, as a query run only where needed (on PostgreSQL)."""
    return EnrollmentAudit.objects.filter(operation_id=operation_id).values_list("course_id", flat=True).distinct()


# --- resolve: the operation's rows and what was audited since ---------------------------------

def _operation_rows(*, course: Course, operation_id: uuid.UUID) -> tuple[Parts, dict]:
    """The operation's audit rows in every course it changed, by course, in
    the order written, each with the person it is about; none when ``course``
    is not one of them (another course's operation is none of this one's)."""
    values = list(
        EnrollmentAudit.objects.filter(operation_id=operation_id)
        .order_by("created", "id")
        .values("id", "created", "course_id", "user_id", "identifier", "state_before", "state_after", "mode_before", "mode_after",
                "cohort_before", "cohort_after", "source", "actor__username",
                "access_from_before", "access_from_after", "access_until_before", "access_until_after")
    )
    if not any(v["course_id"] == course.pk for v in values):
        return {}, {}
    meta = {"source": values[0]["source"], "actor": values[0]["actor__username"] or ""}
    parts: Parts = {}
    for v in values:
        parts.setdefault(v["course_id"], []).append(OperationRow(
            id=v["id"], created=v["created"], key=_key(v["user_id"], v["identifier"]), user_id=v["user_id"], identifier=v["identifier"],
            state_before=v["state_before"], state_after=v["state_after"], mode_before=v["mode_before"], mode_after=v["mode_after"],
            cohort_before=v["cohort_before"], cohort_after=v["cohort_after"],
            access_from_before=v["access_from_before"], access_from_after=v["access_from_after"],
            access_until_before=v["access_until_before"], access_until_after=v["access_until_after"],
        ))
    return parts, meta


def _first(parts: Parts) -> datetime.datetime:
    return min(rows[0].created for rows in parts.values())


def _courses(parts: Parts) -> dict[int, Course]:
    return Course.objects.in_bulk(sorted(parts))


def _key(user_id: int | None, identifier: str) -> PersonKey:
    return ("user", user_id) if user_id is not None else ("email", email_key(identifier))


def _later(*, course: Course, operation_id: uuid.UUID, rows: list[OperationRow]) -> dict[PersonKey, LaterChange]:
    """Per person, the newest audit row of the course written after their
    last row in the operation by anything else: one query over the rows
    audited since the operation began (for its people)."""
    last = {row.key: (row.created, row.id) for row in rows}
    user_ids = sorted({row.user_id for row in rows if row.user_id is not None})
    has_emails = any(row.user_id is None for row in rows)
    who = Q(user_id__any_of=user_ids) if user_ids else Q(pk__in=[])
    if has_emails:
        who |= Q(user__isnull=True)
    since = (
        EnrollmentAudit.objects.filter(who, course=course, created__gte=rows[0].created)
        .exclude(operation_id=operation_id)
        .order_by("created", "id")
        .values("id", "created", "user_id", "identifier", "source", "actor__username")
    )
    later: dict[PersonKey, LaterChange] = {}
    for v in since:
        key = _key(v["user_id"], v["identifier"])
        if key in last and (v["created"], v["id"]) > last[key]:
            later[key] = LaterChange(id=v["id"], created=v["created"], actor=v["actor__username"] or "", source=v["source"])
    return later


def _refusal(*, operation_id: uuid.UUID, first: datetime.datetime, now: datetime.datetime, courses: dict[int, Course], actor: Actor) -> str:
    if first < now - datetime.timedelta(days=settings.UNDO_DAYS):
        return _("This operation is more than %(n)s days old and can no longer be undone.") % {"n": settings.UNDO_DAYS}
    if actor is not None:
        others = [c for c in courses.values() if not can_manage_course(actor, c)]
        if others:
            names = ", ".join(sorted(c.key for c in others))
            return ngettext(
                "This operation also changed %(n)s course you may not manage (%(names)s); "
                "only someone who manages every course it changed may undo it.",
                "This operation also changed %(n)s courses you may not manage (%(names)s); "
                "only someone who manages every course it changed may undo it.",
                len(others),
            ) % {"n": len(others), "names": names}
    if UndoJob.objects.filter(operation_id=operation_id, status__in=UndoJob.PENDING_STATUSES).exists():
        return _("This operation is being undone already, in the background (see Pending tasks).")
    undone = (
        EnrollmentAudit.objects.filter(undoes=operation_id)
        .order_by("created").values("created", "actor__username").first()
    )
    if undone is not None:
        by = undone["actor__username"] or _("someone")
        return _("This operation was undone already, by %(by)s at %(when)s.") % {
            "by": by, "when": f"{timezone.localtime(undone['created']):%Y-%m-%d %H:%M}",
        }
    return ""


# --- lock: everyone's current rows -------------------------------------------------------------

def _current(*, course: Course, rows: list[OperationRow], lock: bool) -> tuple[dict[PersonKey, Current], dict[str, int]]:
    """Each person's state now (by person key), and the course's cohorts (name → id).
    With ``lock`` their enrollments and invitations are locked until commit."""
    user_ids = sorted({row.user_id for row in rows if row.user_id is not None})
    users = {
        u.pk: u for u in get_user_model().objects.filter(pk__any_of=user_ids).only("id", "username", "email", "first_name", "last_name")
    } if user_ids else {}
    enrollments_qs = Enrollment.objects.filter(course=course, user_id__any_of=user_ids).only("id", "user_id", "is_active", "mode", "access_from", "access_until").order_by("user_id")
    if lock:
        # Lock in user-id order, as a batch does: an undo and a batch naming the same people queue, never deadlock.
        enrollments_qs = enrollments_qs.select_for_update()
    enrollments = {e.user_id: e for e in enrollments_qs} if user_ids else {}
    keys = {str(row.key[1]) for row in rows if row.user_id is None} | {email_key(u.email) for u in users.values() if u.email}
    allowances_qs = Allowance.objects.filter(course=course, email_key__any_of=sorted(keys)).only("id", "email", "email_key", "auto_enroll").order_by("email_key")
    if lock:
        allowances_qs = allowances_qs.select_for_update()
    allowances = {a.email_key: a for a in allowances_qs} if keys else {}
    in_cohort = dict(
        CohortMembership.objects.filter(course=course, user_id__any_of=user_ids).values_list("user_id", "cohort__name")
    ) if user_ids else {}
    cohorts = dict(Cohort.objects.filter(course=course).values_list("name", "id"))

    current: dict[PersonKey, Current] = {}
    for row in rows:
        if row.key in current:
            continue
        if row.user_id is not None:
            user = users.get(row.user_id)
            enrollment = enrollments.get(row.user_id)
            allowance = allowances.get(email_key(user.email)) if user is not None and user.email else None
            email, name = (user.email, user.display_name) if user is not None else ("", "")
        else:
            enrollment, allowance = None, allowances.get(str(row.key[1]))
            email, name = (allowance.email if allowance is not None else row.identifier), ""
        if enrollment is not None:
            state = State.ENROLLED if enrollment.is_active else State.UNENROLLED
        elif allowance is not None:
            state = State.ALLOWED_AUTO if allowance.auto_enroll else State.ALLOWED
        else:
            state = State.NONE
        current[row.key] = Current(
            state=state, mode=enrollment.mode if enrollment is not None else "",
            cohort=in_cohort.get(row.user_id, "") if row.user_id is not None else "", email=email, name=name,
            access_from=enrollment.access_from if enrollment is not None else None,
            access_until=enrollment.access_until if enrollment is not None else None,
        )
    return current, cohorts


# --- write: one bulk statement per kind of change ---------------------------------------------

def _write(*, course: Course, request: UndoRequest, plan: UndoPlan, cohorts: dict[str, int]) -> None:
    bulk_insert(
        Enrollment, sorted(plan.enrollments_to_upsert, key=lambda row: row["user_id"]),
        unique_fields=["user", "course"], update_fields=["is_active", "mode", "updated", "access_from", "access_until"],
    )
    if plan.enrollment_users_to_delete:
        Enrollment.objects.filter(course=course, user_id__any_of=plan.enrollment_users_to_delete).delete()
    bulk_insert(
        Allowance, sorted(plan.allowances_to_upsert, key=lambda row: row["email_key"]),
        unique_fields=["course", "email_key"], update_fields=["auto_enroll", "used_at"],
    )
    if plan.allowance_keys_to_delete:
        Allowance.objects.filter(course=course, email_key__any_of=plan.allowance_keys_to_delete).delete()
    leaving = sorted(u for u, name in plan.cohorts.items() if not name)
    if leaving:
        CohortMembership.objects.filter(course=course, user_id__any_of=leaving).delete()
    joining = [
        {"cohort_id": cohorts[name], "course_id": course.pk, "user_id": u, "created": request.now}
        for u, name in sorted(plan.cohorts.items()) if name
    ]
    # An upsert: a learner is in at most one cohort per course, so joining moves them.
    bulk_insert(CohortMembership, joining, unique_fields=["user", "course"], update_fields=["cohort"])
    bulk_insert(EnrollmentAudit, plan.audits)
    restored = sorted(r.user_id for r in plan.restores if r.user_id is not None)
    if restored:
        operation_undone.send(sender=EnrollmentAudit, course_id=course.pk, operation_id=request.operation_id,
                              undo_operation_id=request.undo_operation_id, user_ids=restored)
    if plan.messages:
        builder = MessageBuilder(course)
        operation_id, reason = request.undo_operation_id, reasons.UNDONE_EMAIL
        rows = []
        for m in plan.messages:
            if m.kind == Notification.Kind.ALLOWED:
                rows.append(builder.allowed(email=m.email, auto_enroll=m.auto_enroll, operation_id=operation_id, reason=reason))
            else:
                send: Callable[..., dict[str, Any]] = {
                    Notification.Kind.ENROLLED: builder.enrolled, Notification.Kind.UNENROLLED: builder.unenrolled,
                    Notification.Kind.ALLOWANCE_REMOVED: builder.allowance_removed,
                }[Notification.Kind(m.kind)]
                rows.append(send(email=m.email, operation_id=operation_id, name=m.name, reason=reason))
        bulk_insert(Notification, rows, ignore_conflicts=True)
        from ..tasks import send_notifications

        enqueue_on_commit(send_notifications, str(operation_id))
