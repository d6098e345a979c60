"""Reads of a course's audit log: every enrollment change, newest first,
filtered, in keyset pages, with the size of each operation.

Every filter is an equality on a column that leads an index after the course
(``EnrollmentAudit.Meta.indexes``), followed by (created, id): a page of the
log is one index range scan whatever the number of audit rows, and the date
range narrows the same scan. Nothing here counts the whole log."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Max, Min, QuerySet
from django.utils import timezone

from courses.models import Course
from enrollment_site.lib.keyset import Cursor, KeysetPage, keyset_page

from ..models import EnrollmentAudit

AUDIT_PAGE_SIZE = 50
# What a row of the page and of the export reads beyond the audit row itself.
_ROW_FIELDS = (
    "id", "created", "identifier", "state_before", "state_after", "mode_before", "mode_after", "cohort_before", "cohort_after",
    "source", "reason", "operation_id", "course_id",
    "actor_id", "user_id", "actor__username", "user__username", "user__email",
)


@dataclass(frozen=True)
class AuditFilter:
    """The audit log's filters; an empty value filters nothing. ``until`` is
    inclusive (the whole day, in the site's time zone)."""

    actor_id: int | None = None
    source: str = ""
    action: str = ""  # the state after the change (``State``)
    since: date | None = None
    until: date | None = None
    operation_id: uuid.UUID | None = None


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def audit_entries(*, course: Course, filters: AuditFilter) -> QuerySet[EnrollmentAudit]:
    """The course's audit rows matching ``filters``, unordered, with the actor's
    and the person's names joined (no query per row)."""
    qs = EnrollmentAudit.objects.filter(course=course)
    if filters.actor_id is not None:
        qs = qs.filter(actor_id=filters.actor_id)
    if filters.source:
        qs = qs.filter(source=filters.source)
    if filters.action:
        qs = qs.filter(state_after=filters.action)
    if filters.operation_id is not None:
        qs = qs.filter(operation_id=filters.operation_id)
    # Ranges on the timestamp itself rather than on its date, so that the
    # index's created column serves them.
    if filters.since is not None:
        qs = qs.filter(created__gte=_day_start(filters.since))
    if filters.until is not None:
        qs = qs.filter(created__lt=_day_start(filters.until + timedelta(days=1)))
    return qs.select_related("actor", "user").only(*_ROW_FIELDS)


def audit_log_page(*, course: Course, filters: AuditFilter, cursor: Cursor | None, size: int = AUDIT_PAGE_SIZE) -> KeysetPage:
    """One page of the course's audit log, newest first: one query, served by
    the index of the filter (see the module's docstring)."""
    return keyset_page(audit_entries(course=course, filters=filters), cursor=cursor, size=size)


@dataclass(frozen=True)
class OperationSummary:
    """One operation (a batch, an import, a rule run, a code batch...) of a course."""

    operation_id: uuid.UUID
    changes: int
    first: datetime
    last: datetime


def operation_summaries(*, course: Course, operation_ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, OperationSummary]:
    """The number of changes, first and last time of each of these operations
    in the course, by operation id: one grouped query over the (course,
    operation) index, costing the size of the operations asked for and never
    that of the whole log."""
    ids = sorted({op for op in operation_ids if op is not None}, key=str)
    if not ids:
        return {}
    rows = (
        EnrollmentAudit.objects.filter(course=course, operation_id__in=ids)
        .values("operation_id")
        .annotate(changes=Count("id"), first=Min("created"), last=Max("created"))
        .order_by()
    )
    return {row["operation_id"]: OperationSummary(**row) for row in rows}


def audit_export_rows(*, course: Course, filters: AuditFilter, chunk_size: int = 2000) -> Iterator[EnrollmentAudit]:
    """Every row of the filtered log, newest first, streamed from the database
    in chunks (constant memory whatever the log's size)."""
    return audit_entries(course=course, filters=filters).order_by("-created", "-id").iterator(chunk_size=chunk_size)
