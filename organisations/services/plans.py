"""Carrying out plans: the one way the organisation changes enrollments.

A ``Plan`` (computed in ``organisations/selectors/plans.py``, and shown as
is by the previews) is carried out by ``plan_execute`` through
``enrollment_batch_update``, so that enrollments, audit entries and emails
behave as in batch enrollment, and the origin of every enrollment it makes is
recorded (``EnrollmentOrigin``) so that only what a unit or a rule made is
ever taken back automatically. Big sets are cut into chunks that also drive
the job's progress bar.

One organisation operation (an assignment, a rule application, an import, a
unit membership change) is audited under ONE operation id across all its
courses and chunks, so that one undo takes all of it back; each origin row it
writes keeps what it replaced (``EnrollmentOriginChange``), so that the undo
restores the origins too (``origins_restore``).
"""

from __future__ import annotations

import uuid

from django.db import connection, transaction
from django.utils import timezone

from accounts.types import Actor
from courses.models import Course
from enrollment_site.lib import lookups  # noqa: F401 (registers __any_of)
from enrollment_site.lib.bulk import array_cursor, bulk_insert
from enrollment_site.lib.jobs import JobRun, job_chunk
from enrollments.models import Outcome, Source
from enrollments.periods import PeriodRequest
from enrollments.services import AfterWrite, enrollment_accounts_enroll, enrollment_accounts_unenroll, enrollment_batch_update
from enrollments.services.expiry import add_months

from .. import reasons
from ..models import EnrollmentOrigin, EnrollmentOriginChange
from ..selectors.plans import Person, Plan
from ..selectors.terms import NO_TERMS, OriginTerms, origin_terms

# People per transaction: each chunk commits, and moves the progress bar.
CHUNK = 5000


def plan_execute(*, plan: Plan, actor: Actor, email_students: bool = False, reason: str = "", run: JobRun | None = None,
                 operation_id: uuid.UUID | None = None) -> dict[str, int]:
    """Carry out ``plan``: enroll and reactivate (recording this origin as the
    provenance), unenroll, all audited under ``operation_id`` (a new one if
    not given: the caller passes its operation's, so that everything one
    operation does is one undo). Returns the counts done. With ``run`` (an
    OrgJob's), each chunk commits with the job's position and running counts
    (``run.counts``), so that a takeover computes the plan again, finds what
    was done already and carries on with the rest."""
    operation_id = operation_id or uuid.uuid4()
    reason = reason or f"{'Rule' if plan.source == Source.RULE else 'Organisation unit'}: {plan.label}"
    done = {"enrolled": 0, "reactivated": 0, "unenrolled": 0}
    terms = origin_terms() if any(cp.enroll or cp.reactivate for cp in plan.courses) else {}
    for cp in sorted(plan.courses, key=lambda cp: cp.course.pk):
        todo = cp.enroll + cp.reactivate
        period = plan_period(terms.get((plan.origin, cp.course.pk), NO_TERMS))
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            with job_chunk(run) as record:
                counts = _enroll_chunk(plan, cp.course, chunk, actor=actor, email_students=email_students, reason=reason,
                                       operation_id=operation_id, period=period)
                _count(done, run, record, counts, advance=len(chunk))
        for start in range(0, len(cp.unenroll), CHUNK):
            chunk = cp.unenroll[start:start + CHUNK]
            with job_chunk(run) as record:
                unenrolled = _unenroll_chunk(plan, cp.course, chunk, actor=actor, email_students=email_students,
                                             reason=reasons.NO_LONGER_QUALIFIES % {"reason": reason}, operation_id=operation_id)
                _count(done, run, record, {"unenrolled": unenrolled}, advance=len(chunk))
    return done


def _enroll_chunk(plan: Plan, course: Course, chunk: list[Person], *, actor: Actor, email_students: bool, reason: str,
                  operation_id: uuid.UUID, period: PeriodRequest | None) -> dict[str, int]:
    """Enroll or reactivate one chunk of the plan's people and record the
    plan's origin for those it changed. On PostgreSQL the plan has decided
    who, by account: one statement writes the enrollments, their audit
    entries, messages and, from what it RETURNED, the origins
    (``enrollment_accounts_enroll`` with ``_ORIGINS_OF_WRITTEN`` after it),
    whatever the chunk's size. Elsewhere through
    ``enrollment_batch_update``, which writes the same rows."""
    if connection.vendor == "postgresql":
        changed = enrollment_accounts_enroll(
            course=course, user_ids=[p.id for p in chunk], actor=actor, email_students=email_students, reason=reason,
            source=plan.source, operation_id=operation_id, period=period,
            after=AfterWrite(_ORIGINS_OF_WRITTEN, {"after_origin": plan.origin, "after_operation_id": operation_id}),
        )
        created = sum(changed.values())
        return {"enrolled": created, "reactivated": len(changed) - created}
    result = enrollment_batch_update(
        course=course, identifiers=[p.identifier for p in chunk], action="enroll", auto_enroll=True,
        email_students=email_students, actor=actor, reason=reason, source=plan.source, operation_id=operation_id,
        **_period_argument(period),
    )
    usernames = {r.username for r in result.results if r.outcome in (Outcome.ENROLLED, Outcome.REACTIVATED)}
    origins_record(origin=plan.origin, course_id=course.pk, operation_id=operation_id, user_ids=[p.id for p in chunk if p.username in usernames])
    return {"enrolled": result.summary.get(Outcome.ENROLLED, 0), "reactivated": result.summary.get(Outcome.REACTIVATED, 0)}


def _unenroll_chunk(plan: Plan, course: Course, chunk: list[Person], *, actor: Actor, email_students: bool, reason: str,
                    operation_id: uuid.UUID) -> int:
    """Unenroll one chunk of the plan's people; how many were unenrolled.
    One statement on PostgreSQL (``enrollment_accounts_unenroll``), else
    through ``enrollment_batch_update``: the same rows either way."""
    if connection.vendor == "postgresql":
        changed = enrollment_accounts_unenroll(
            course=course, user_ids=[p.id for p in chunk], actor=actor, email_students=email_students, reason=reason,
            source=plan.source, operation_id=operation_id,
        )
        return sum(changed.values())
    result = enrollment_batch_update(
        course=course, identifiers=[p.identifier for p in chunk], action="unenroll", auto_enroll=False,
        email_students=email_students, actor=actor, reason=reason, source=plan.source, operation_id=operation_id,
    )
    return result.summary.get(Outcome.UNENROLLED, 0)


def plan_period(terms: OriginTerms) -> PeriodRequest | None:
    """The period an assignment's or rule's terms give the enrollments it
    makes: its duration; else, when it recurs, its first period of
    ``recur_months``; else none asked (the course's default applies)."""
    if terms.duration_days:
        return PeriodRequest(duration_days=terms.duration_days)
    if terms.recur_months:
        return PeriodRequest(access_until=add_months(timezone.now(), terms.recur_months))
    return None


def _period_argument(period: PeriodRequest | None) -> dict:
    # Only when there is one to ask for: without one the batch gives the course's default.
    return {} if period is None else {"period": period}


# What each origin row was (or that there was none) kept under the operation,
# then the origin rows written: one statement over the ids' array.
_ORIGINS_RECORD = """
    WITH people AS (SELECT DISTINCT user_id FROM unnest(%(ids)s::bigint[]) AS t(user_id)),
    was AS (
        SELECT o.user_id, o.operation_id, o.created FROM organisations_enrollmentorigin o
        WHERE o.origin = %(origin)s AND o.course_id = %(course_id)s AND o.user_id = ANY(%(ids)s::bigint[])
    ),
    kept AS (
        INSERT INTO organisations_enrollmentoriginchange (operation_id, origin, course_id, user_id, before_operation_id, before_created)
        SELECT %(operation_id)s, %(origin)s, %(course_id)s, p.user_id, was.operation_id, was.created
        FROM people p LEFT JOIN was USING (user_id) ORDER BY p.user_id
        ON CONFLICT DO NOTHING
    )
    INSERT INTO organisations_enrollmentorigin (user_id, course_id, origin, operation_id, created)
    SELECT p.user_id, %(course_id)s, %(origin)s, %(operation_id)s, %(now)s FROM people p ORDER BY p.user_id
    ON CONFLICT (origin, course_id, user_id) DO UPDATE SET operation_id = excluded.operation_id, created = excluded.created
"""


# The same, as writes added to ``enrollment_accounts_enroll``'s statement:
# the origins of the enrollments it wrote (``written``), in that statement.
_ORIGINS_OF_WRITTEN = """
    , origin_was AS (
        SELECT o.user_id, o.operation_id, o.created FROM organisations_enrollmentorigin o
        WHERE o.origin = %(after_origin)s AND o.course_id = %(course_id)s AND o.user_id IN (SELECT user_id FROM written)
    ),
    origin_kept AS (
        INSERT INTO organisations_enrollmentoriginchange (operation_id, origin, course_id, user_id, before_operation_id, before_created)
        SELECT %(after_operation_id)s, %(after_origin)s, %(course_id)s, w.user_id, was.operation_id, was.created
        FROM written w LEFT JOIN origin_was was USING (user_id) ORDER BY w.user_id
        ON CONFLICT DO NOTHING
    ),
    origin_set AS (
        INSERT INTO organisations_enrollmentorigin (user_id, course_id, origin, operation_id, created)
        SELECT w.user_id, %(course_id)s, %(after_origin)s, %(after_operation_id)s, %(now)s FROM written w ORDER BY w.user_id
        ON CONFLICT (origin, course_id, user_id) DO UPDATE SET operation_id = excluded.operation_id, created = excluded.created
    )
"""


def origins_record(*, origin: str, course_id: int, operation_id: uuid.UUID, user_ids: list[int]) -> None:
    """Record ``origin`` as the provenance of ``user_ids``' enrollments in the
    course, made by ``operation_id``; what each origin row was before (or that
    there was none) is kept under the operation for its undo (a person
    recorded twice by one operation, by an import's unit and then its row,
    keeps what was there first). One statement on PostgreSQL, three elsewhere."""
    if not user_ids:
        return
    if connection.vendor == "postgresql":
        with array_cursor() as cursor:
            cursor.execute(_ORIGINS_RECORD, {
                "ids": sorted(user_ids), "origin": origin, "course_id": course_id, "operation_id": operation_id, "now": timezone.now(),
            })
        return
    now = timezone.now()
    was = {
        user_id: (op, created) for user_id, op, created in EnrollmentOrigin.objects.filter(
            origin=origin, course_id=course_id, user_id__any_of=sorted(user_ids),
        ).values_list("user_id", "operation_id", "created")
    }
    bulk_insert(
        EnrollmentOriginChange,
        [{"operation_id": operation_id, "origin": origin, "course_id": course_id, "user_id": u,
          "before_operation_id": was.get(u, (None, None))[0], "before_created": was.get(u, (None, None))[1]} for u in sorted(user_ids)],
        # A person enrolled twice by one operation (an import's unit, then its row) keeps what was there first.
        ignore_conflicts=True,
    )
    bulk_insert(
        EnrollmentOrigin,
        [{"user_id": u, "course_id": course_id, "origin": origin, "operation_id": operation_id, "created": now} for u in sorted(user_ids)],
        unique_fields=["origin", "course", "user"], update_fields=["operation_id", "created"],
    )


def origins_restore(*, course_id: int, operation_id: uuid.UUID, undo_operation_id: uuid.UUID, user_ids: list[int]) -> None:
    """An undo of ``operation_id`` restored ``user_ids`` in the course: put
    back the origin rows the operation wrote for them as they were before it
    (removed where there was none), keeping what they are now under the undo,
    so that undoing the undo puts them back in turn. Four queries."""
    changes = list(
        EnrollmentOriginChange.objects.filter(operation_id=operation_id, course_id=course_id, user_id__any_of=user_ids)
        .values_list("origin", "user_id", "before_operation_id", "before_created")
    )
    if not changes:
        return
    now = {
        (origin, user_id): (pk, op, created) for pk, origin, user_id, op, created in EnrollmentOrigin.objects.filter(
            course_id=course_id, user_id__any_of=sorted({u for _, u, _, _ in changes}),
        ).values_list("pk", "origin", "user_id", "operation_id", "created")
    }
    bulk_insert(
        EnrollmentOriginChange,
        [{"operation_id": undo_operation_id, "origin": origin, "course_id": course_id, "user_id": user_id,
          "before_operation_id": now.get((origin, user_id), (None, None, None))[1],
          "before_created": now.get((origin, user_id), (None, None, None))[2]} for origin, user_id, _, _ in changes],
        ignore_conflicts=True,
    )
    gone = sorted(now[(origin, user_id)][0] for origin, user_id, op, _ in changes if op is None and (origin, user_id) in now)
    if gone:
        EnrollmentOrigin.objects.filter(pk__any_of=gone).delete()
    bulk_insert(
        EnrollmentOrigin,
        sorted(({"user_id": user_id, "course_id": course_id, "origin": origin, "operation_id": op, "created": created}
                for origin, user_id, op, created in changes if op is not None), key=lambda row: (row["origin"], row["user_id"])),
        unique_fields=["origin", "course", "user"], update_fields=["operation_id", "created"],
    )


def _count(done: dict[str, int], run: JobRun | None, record, counts: dict[str, int], *, advance: int) -> None:
    for key, n in counts.items():
        done[key] += n
    if run is not None:
        run.counts.update(counts)
        record.record(advance=advance, summary=dict(run.counts))


class _DryRun(Exception):
    pass


def dry_run(change, compute):
    """Make ``change`` in a savepoint, ``compute`` the plan, roll the change back:
    the preview sees exactly what the real change would see, and nothing stays written."""
    box = {}
    try:
        with transaction.atomic():
            change()
            box["plan"] = compute()
            raise _DryRun
    except _DryRun:
        pass
    return box["plan"]
