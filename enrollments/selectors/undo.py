"""Whether operations may still be undone, for lists that offer an Undo per row
(Task history): set-based, so a page of 25 operations costs what a
page of one does."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from accounts.types import Actor
from courses.models import Course
from courses.rules import courses_managed_by
from enrollment_site.lib import lookups  # noqa: F401 (registers __any_of)

from ..models import EnrollmentAudit, UndoJob


@dataclass(frozen=True)
class UndoState:
    """What a list says about one operation: ``undoable`` (offer **Undo**), or
    who undid it and when, with the undo's own operation (to link to)."""

    operation_id: uuid.UUID
    undoable: bool = False
    being_undone: bool = False  # an undo job of it is queued or running
    undone_by: str = ""
    undone_at: datetime.datetime | None = None
    undo_operation_id: uuid.UUID | None = None


def undo_states(*, course: Course, operation_ids: Iterable[uuid.UUID], viewer: Actor) -> dict[uuid.UUID, UndoState]:
    """For each of ``operation_ids``, whether ``viewer`` may undo it from
    ``course``'s pages: it changed someone in the course, within the last
    ``UNDO_DAYS`` days, it was not undone (else who undid it, when, and the
    undo's operation), no undo of it is pending, and ``viewer`` may manage
    every course it changed (an organisation operation spans several), as
    ``operation_undo`` requires. At most four queries, whatever the number
    of operations. An operation that changed nobody in the course is
    answered not undoable."""
    ops = sorted(set(operation_ids))
    if not ops:
        return {}
    courses: dict[uuid.UUID, set[int]] = {}
    first: dict[uuid.UUID, datetime.datetime] = {}
    for row in EnrollmentAudit.objects.filter(operation_id__any_of=ops).values("operation_id", "course_id").annotate(first=Min("created")).order_by():
        courses.setdefault(row["operation_id"], set()).add(row["course_id"])
        first[row["operation_id"]] = min(first.get(row["operation_id"], row["first"]), row["first"])
    undone: dict[uuid.UUID, dict] = {}
    for row in (
        EnrollmentAudit.objects.filter(undoes__any_of=ops).values("undoes", "operation_id", "actor__username")
        .annotate(at=Min("created")).order_by("at")
    ):
        undone.setdefault(row["undoes"], row)
    pending = set(UndoJob.objects.filter(operation_id__any_of=ops, status__in=UndoJob.PENDING_STATUSES).values_list("operation_id", flat=True))
    others = sorted({c for cs in courses.values() for c in cs} - {course.pk})
    managed = set(courses_managed_by(user=viewer).filter(pk__in=others).values_list("pk", flat=True)) if others else set()
    since = timezone.now() - datetime.timedelta(days=settings.UNDO_DAYS)
    states = {}
    for op in ops:
        if op in undone:
            u = undone[op]
            states[op] = UndoState(op, undone_by=u["actor__username"] or "", undone_at=u["at"], undo_operation_id=u["operation_id"])
            continue
        changed = courses.get(op, set())
        states[op] = UndoState(op, being_undone=op in pending, undoable=(
            course.pk in changed and first[op] >= since and op not in pending and (changed - {course.pk}) <= managed
        ))
    return states
