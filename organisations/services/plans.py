"""Carrying out plans: the one way the organisation changes enrollments.

A ``Plan`` (computed in ``organisations/selectors/plans.py``, and shown as
is by the previews) is carried out by ``plan_execute`` through
``enrollment_batch_update``, so that enrollments, audit entries and emails
behave as in batch enrollment, and the origin of every enrollment it makes is
recorded (``EnrollmentOrigin``) so that only what a unit or a rule made is
ever taken back automatically. Big sets are cut into chunks that also drive
the job's progress bar.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from accounts.types import Actor
from enrollment_site.lib.bulk import bulk_insert
from enrollment_site.lib.jobs import JobRun, job_chunk
from enrollments.models import Outcome, Source
from enrollments.services import enrollment_batch_update

from ..models import EnrollmentOrigin
from ..selectors.plans import Plan

# People per transaction: each chunk commits, and moves the progress bar.
CHUNK = 5000


def plan_execute(*, plan: Plan, actor: Actor, email_students: bool = False, reason: str = "", run: JobRun | None = None) -> dict[str, int]:
    """Carry out ``plan``: enroll and reactivate (recording this origin as the
    provenance), unenroll. Returns the counts done. With ``run`` (an OrgJob's),
    each chunk commits with the job's position and running counts
    (``run.counts``), so that a takeover computes the plan again, finds what
    was done already and carries on with the rest."""
    reason = reason or f"{'Rule' if plan.source == Source.RULE else 'Organisation unit'}: {plan.label}"
    done = {"enrolled": 0, "reactivated": 0, "unenrolled": 0}
    for cp in sorted(plan.courses, key=lambda cp: cp.course.pk):
        todo = cp.enroll + cp.reactivate
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            with job_chunk(run) as record:
                operation_id = uuid.uuid4()
                result = enrollment_batch_update(
                    course=cp.course, identifiers=[p.identifier for p in chunk], action="enroll", auto_enroll=True,
                    email_students=email_students, actor=actor, reason=reason, source=plan.source, operation_id=operation_id,
                )
                changed = {r.username for r in result.results if r.outcome in (Outcome.ENROLLED, Outcome.REACTIVATED)}
                now = timezone.now()
                bulk_insert(
                    EnrollmentOrigin,
                    [{"user_id": p.id, "course_id": cp.course.pk, "origin": plan.origin, "operation_id": operation_id, "created": now}
                     for p in chunk if p.username in changed],
                    unique_fields=["origin", "course", "user"], update_fields=["operation_id", "created"],
                )
                counts = {"enrolled": result.summary.get(Outcome.ENROLLED, 0), "reactivated": result.summary.get(Outcome.REACTIVATED, 0)}
                _count(done, run, record, counts, advance=len(chunk))
        for start in range(0, len(cp.unenroll), CHUNK):
            chunk = cp.unenroll[start:start + CHUNK]
            with job_chunk(run) as record:
                result = enrollment_batch_update(
                    course=cp.course, identifiers=[p.identifier for p in chunk], action="unenroll", auto_enroll=False,
                    email_students=email_students, actor=actor, reason=f"No longer qualifies: {reason}", source=plan.source,
                )
                _count(done, run, record, {"unenrolled": result.summary.get(Outcome.UNENROLLED, 0)}, advance=len(chunk))
    return done


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
