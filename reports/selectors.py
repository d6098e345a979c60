"""Reads for the Data download tab and the rows of each report.

Each report's rows are given twice, in the same order: as SQL cells for
``COPY`` on PostgreSQL (``ReportSpec.cells``, formatted and guarded in the
query by ``enrollment_site.lib.csv_copy``), and as Python rows from
``values_list(...).iterator(chunk_size=...)`` for the other databases. Either
way a report of a million rows holds one chunk in memory at a time."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Case, CharField, Count, Exists, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, TextField, Value, When
from django.db.models.functions import Cast, Coalesce, Concat
from django.db.models.lookups import IsNull
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from codes.models import Redemption, Status
from codes.selectors import Scope
from courses.models import Course
from enrollment_site.lib import csv_copy
from enrollment_site.lib.csv_copy import BOOL, DATE, DATETIME, PLAIN, TEXT
from enrollment_site.lib.errors import AppError
from enrollment_site.lib.jobs import JobStatus
from enrollment_site.lib.safe_csv import safe_cell
from enrollments import periods
from enrollments.models import (
    Allowance,
    BatchJob,
    BulkEnrollJob,
    Enrollment,
    EnrollmentAudit,
    MembershipPreview,
    RosterJob,
    Source,
    State,
    UndoJob,
)
from enrollments.selectors.undo import UndoState, undo_states
from organisations.models import OrgJob

from .models import ReportTask, error_label

CHUNK_SIZE = 2000

# --- the Data download tab ------------------------------------------------------


@dataclass(frozen=True)
class PendingTask:
    """One line of Pending tasks: a report, a large batch enrollment, a large
    learners-table action, a large undo or a large Membership preview
    (``preview_token`` set: its page is linked)."""

    type: str
    requester: str
    submitted: datetime
    state: str
    state_label: str
    done: int
    total: int
    percent: int
    preview_token: uuid.UUID | None = None


def pending_tasks(*, course: Course, viewer=None) -> list[PendingTask]:
    """The course's queued and running report tasks, batch enrollments,
    learners-table actions and undos, and ``viewer``'s own Membership previews
    (a preview is seen only by whoever made it), oldest first (the order a
    worker takes them). Five queries."""
    reports = ReportTask.objects.filter(course=course, status__in=ReportTask.PENDING_STATUSES).select_related("requester")
    batches = BatchJob.objects.filter(course=course, status__in=BatchJob.PENDING_STATUSES).select_related("requester")
    roster_jobs = (
        RosterJob.objects.filter(course=course, status__in=RosterJob.PENDING_STATUSES).select_related("requester").defer("enrollment_ids")
    )
    undo_jobs = UndoJob.objects.filter(course=course, status__in=UndoJob.PENDING_STATUSES).select_related("requester")
    previews = (
        MembershipPreview.objects.filter(course=course, status__in=MembershipPreview.PENDING_STATUSES, requester_id=getattr(viewer, "pk", None))
        .select_related("requester").only("public_id", "action", "requester__username", *_PROGRESS_FIELDS)
    )
    rows = [
        *(_pending(r, _report_label(r)) for r in reports),
        *(_pending(j, _batch_label(j)) for j in batches),
        *(_pending(j, _learners_label(j)) for j in roster_jobs),
        *(_pending(j, _("Undo of an operation")) for j in undo_jobs),
        *(
            replace(_pending(p, _("Preview of a batch %(action)s") % {"action": _action(p)}), preview_token=p.public_id)
            for p in previews
        ),
    ]
    return sorted(rows, key=lambda row: row.submitted)


def _action(job) -> str:
    # An action's label inside a sentence ("Batch enroll"): lower case where the language writes it so.
    return str(job.get_action_display()).lower()


def _report_label(task: ReportTask) -> str:
    return _("Report: %(report)s") % {"report": task.get_kind_display()}


def _batch_label(job) -> str:
    return _("Batch %(action)s") % {"action": _action(job)}


def _learners_label(job) -> str:
    return _("Learners: %(action)s") % {"action": _action(job)}


# What ``_pending`` reads of a job (a preview's identifiers may be a long text).
_PROGRESS_FIELDS = ("status", "done", "total", "created")


def _pending(job, label: str) -> PendingTask:
    # Every job kind shares ProgressJob's fields; only its label differs.
    return PendingTask(
        type=label, requester=job.requester.username if job.requester else "", submitted=job.created, state=job.status,
        state_label=job.get_status_display(), done=job.done, total=job.total, percent=job.percent,
    )


# --- Task history: the course's finished and failed jobs, with Undo -------------------

HISTORY_PAGE = 25


class InvalidHistoryCursor(AppError):
    code = "invalid_cursor"
    # Lazy, so that it reads in the language of whoever sees it (AppError types it str).
    message = gettext_lazy(  # type: ignore[assignment]
        "That page link of the tasks history is not valid (it may have been cut short). Showing the newest tasks."
    )

    def __init__(self, message: str | None = None):
        super().__init__(message, field="history")

    def __str__(self) -> str:
        return str(self.message)  # lazy: in the language active when shown


@dataclass(frozen=True)
class HistoryTask:
    """One line of Task history. ``operation_id`` is the operation
    the job audited in this course (None for a report), ``undo`` whether it
    may be undone or who undid it."""

    kind: int  # the job table's rank in the list's order (ties on ``finished``)
    pk: int
    type: str
    requester: str
    finished: datetime
    state: str
    state_label: str
    error: str
    operation_id: uuid.UUID | None
    undo: UndoState | None = None

    @property
    def cursor(self) -> str:
        data = {"f": self.finished.isoformat(), "k": self.kind, "i": self.pk}
        return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class HistoryPage:
    rows: list[HistoryTask]
    next_cursor: str  # blank on the last page
    first: bool  # no cursor: the newest tasks


def _history_after(text: str) -> tuple[datetime, int, int] | None:
    if not text:
        return None
    try:
        if len(text) > 200:
            raise ValueError
        data = json.loads(base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4)))
        finished = parse_datetime(data["f"])
        if finished is None:
            raise ValueError
        return finished, int(data["k"]), int(data["i"])
    except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error) as exc:
        raise InvalidHistoryCursor() from exc


def _older(kind: int, after: tuple[datetime, int, int] | None) -> Q:
    """Rows of table ``kind`` after the cursor in (finished, kind, id) descending order."""
    if after is None:
        return Q()
    finished, cursor_kind, pk = after
    if kind < cursor_kind:
        return Q(finished__lte=finished)
    if kind == cursor_kind:
        return Q(finished__lt=finished) | Q(finished=finished, pk__lt=pk)
    return Q(finished__lt=finished)


def task_history(*, course: Course, viewer, cursor: str = "", limit: int | None = None) -> HistoryPage:
    """The course's finished and failed jobs of the last ``UNDO_DAYS`` days,
    newest first, ``limit`` (``HISTORY_PAGE``) to a page from ``cursor`` (keyset on finished,
    table and id; ``InvalidHistoryCursor`` for one this did not write):
    reports, Membership batches and uploads, API bulk calls, learners-table
    actions, undos, and the organisation's assignments, rule applications and
    imports that changed someone in this course. Each manual operation says
    whether ``viewer`` may undo it (``undo_states``) or who undid it. A fixed
    number of queries whatever the number of rows (one per table, four for
    the undo states)."""
    limit = limit or HISTORY_PAGE
    after = _history_after(cursor)
    since = timezone.now() - timedelta(days=settings.UNDO_DAYS)
    done = Q(status__in=(JobStatus.SUCCEEDED, JobStatus.FAILED), finished__gte=since)
    take = limit + 1

    def newest(qs, kind):
        return list(qs.filter(done, _older(kind, after)).select_related("requester").order_by("-finished", "-id")[:take])

    changed_here = Exists(EnrollmentAudit.objects.filter(course=course, operation_id=OuterRef("public_id")))
    rows: list[HistoryTask] = []
    for r in newest(ReportTask.objects.filter(course=course), 0):
        rows.append(replace(_history(r, 0, _report_label(r), None), error=error_label(r.error)))
    for j in newest(BatchJob.objects.filter(course=course).defer("identifiers", "results", "upload_rows"), 1):
        rows.append(_history(j, 1, _batch_label(j), j.public_id))
    for j in newest(RosterJob.objects.filter(course=course).defer("enrollment_ids"), 2):
        rows.append(_history(j, 2, _learners_label(j), j.operation_id))
    for j in newest(UndoJob.objects.filter(course=course), 3):
        rows.append(_history(j, 3, _("Undo of an operation"), j.undo_operation_id))
    # An API bulk call audits each of its courses under uuid5(its public id, the course key); its course keys are in its payload.
    for j in newest(BulkEnrollJob.objects.filter(payload__courses__icontains=json.dumps(course.key)), 4):
        if course.key in j.payload.get("courses", []):
            # The action is the API's own word (enroll, unenroll), as the call gave it.
            label = _("API bulk %(action)s") % {"action": j.payload.get("action", "")}
            rows.append(_history(j, 4, label.rstrip(), uuid.uuid5(j.public_id, course.key)))
    # An organisation job audits under its public id in every course it changed.
    for j in newest(OrgJob.objects.exclude(kind=OrgJob.Kind.CHECK).filter(changed_here), 5):
        rows.append(_history(j, 5, _("Organisation: %(kind)s") % {"kind": str(j.get_kind_display()).lower()}, j.public_id))
    rows.sort(key=lambda row: (row.finished, row.kind, row.pk), reverse=True)
    page, more = rows[:limit], len(rows) > limit
    states = undo_states(course=course, operation_ids=[r.operation_id for r in page if r.operation_id and r.state == JobStatus.SUCCEEDED], viewer=viewer)
    page = [replace(r, undo=states.get(r.operation_id)) if r.operation_id else r for r in page]
    return HistoryPage(rows=page, next_cursor=page[-1].cursor if more else "", first=after is None)


def _history(job, kind: int, label: str, operation_id: uuid.UUID | None) -> HistoryTask:
    return HistoryTask(
        kind=kind, pk=job.pk, type=label, requester=job.requester.username if job.requester else "", finished=job.finished,
        state=job.status, state_label=job.get_status_display(), error=job.error, operation_id=operation_id,
    )


def finished_reports(*, course: Course, limit: int = 25) -> QuerySet[ReportTask]:
    """The course's finished report tasks (succeeded with a file, or failed with
    their reason), newest first."""
    return (
        ReportTask.objects.filter(course=course, status__in=(ReportTask.Status.SUCCEEDED, ReportTask.Status.FAILED))
        .select_related("requester")
        .order_by("-finished", "-id")[:limit]
    )


def report_for_download(*, course: Course, report_id: int) -> ReportTask:
    """A succeeded report of this course with its file; Http404 otherwise, so a
    report id of another course cannot be told apart from a missing one."""
    return get_object_or_404(ReportTask.objects.exclude(file=""), course=course, pk=report_id, status=ReportTask.Status.SUCCEEDED)


# --- the rows of each report ----------------------------------------------------
#
# Each report is read two ways with the same rows in the same order: on
# PostgreSQL as ``cells`` (the ordering key, then each column's value, which
# ``csv_copy`` formats and guards in SQL and streams by COPY), elsewhere as
# ``rows`` (Python values for ``safe_row`` and ``csv.writer``). Both give the
# same bytes; tests compare them on every kind of cell.


@dataclass(frozen=True)
class ReportSpec:
    header: Sequence[str | Promise]  # lazy where the header is in the requester's language
    name: str  # the middle part of the file name
    queryset: Callable[[Course], QuerySet]  # counted for the progress total
    rows: Callable[[Course], Iterator[list]]
    values: Callable[[Course], QuerySet]  # what ``rows`` reads: the report's query as it was before COPY
    cells: Callable[[Course], QuerySet]  # the ordering key, then one value per column, for ``csv_copy``
    kinds: tuple[str, ...]  # each column's kind of cell (``csv_copy.TEXT``, ...)

    def copy_select(self, course: Course) -> tuple[str, list]:
        """The SELECT whose COPY is the report's rows, header left out."""
        return csv_copy.csv_select(self.cells(course), self.kinds)


def _course_name(course: Course) -> Value:
    # The same in every row: guarded once here, by safe_cell itself (a PLAIN cell; '' is NULL, an empty cell).
    return Value(safe_cell(course.display_name) or None, output_field=CharField())


def _may_enroll_qs(course: Course):
    return Allowance.objects.filter(course=course, used_at__isnull=True)


def _may_enroll_values(course: Course) -> QuerySet:
    return _may_enroll_qs(course).order_by("id").values_list("email", "auto_enroll", "created_by__username", "created")


# The column names of the reports whose header is in the requester's language
# (the periods report's are a documented contract for programs: English).
MAY_ENROLL_HEADER = [
    pgettext_lazy("report column", "course"), pgettext_lazy("report column", "email"), pgettext_lazy("report column", "auto_enroll"),
    pgettext_lazy("report column", "allowed_by"), pgettext_lazy("report column", "allowed_at"),
]
ENROLLED_HEADER = [
    pgettext_lazy("report column", "course"), pgettext_lazy("report column", "username"), pgettext_lazy("report column", "name"),
    pgettext_lazy("report column", "email"), pgettext_lazy("report column", "mode"), pgettext_lazy("report column", "enrolled_at"),
    pgettext_lazy("report column", "enrolled_via"), pgettext_lazy("report column", "access_from"),
    pgettext_lazy("report column", "access_until"), pgettext_lazy("report column", "status"),
]
CODES_HEADER = [
    pgettext_lazy("report column", "course"), pgettext_lazy("report column", "code"), pgettext_lazy("report column", "batch"),
    pgettext_lazy("report column", "status"), pgettext_lazy("report column", "uses"), pgettext_lazy("report column", "max_uses"),
    pgettext_lazy("report column", "expires_on"), pgettext_lazy("report column", "redemptions"), pgettext_lazy("report column", "created"),
    pgettext_lazy("report column", "expiry_time_zone"),
]


def may_enroll_rows(course: Course) -> Iterator[list]:
    """Allowances of the course that have not turned into an enrollment."""
    for email, auto_enroll, allowed_by, allowed_at in _may_enroll_values(course).iterator(chunk_size=CHUNK_SIZE):
        yield [course.display_name, email, auto_enroll, allowed_by or "", allowed_at]


def _may_enroll_cells(course: Course) -> QuerySet:
    return (
        _may_enroll_qs(course)
        .order_by("id")
        .values_list("id", _course_name(course), "email", "auto_enroll", "created_by__username", "created")
    )


def _enrolled_qs(course: Course):
    return Enrollment.objects.filter(course=course, is_active=True)


def _labels(choices) -> dict[str, str]:
    """Display labels by value in the active language (the report's), as plain strings for SQL and CSV alike."""
    return {value: str(label) for value, label in choices}


def _enrolled_values(course: Course) -> QuerySet:
    return (
        _enrolled_qs(course)
        .order_by("id")
        .values_list("user__username", "user__first_name", "user__last_name", "user__email", "mode", "created", "source",
                     "access_from", "access_until", periods.status_expression(timezone.now()))
    )


def enrolled_profile_rows(course: Course) -> Iterator[list]:
    """Active enrollments of the course with the learner's profile, how they
    came in, their access period (empty for an open side) and its ``status``
    (``active``, ``upcoming`` or ``expired``, as the enrollments API says it)."""
    sources = _labels(Source.choices)
    rows = _enrolled_values(course).iterator(chunk_size=CHUNK_SIZE)
    for username, first, last, email, mode, created, source, access_from, access_until, status in rows:
        yield [
            course.display_name, username, f"{first} {last}".strip(), email, mode, created, sources.get(source, source),
            access_from, access_until, status,
        ]  # fmt: skip


def _label(field: str, labels: dict[str, str]) -> Case:
    """``labels.get(value, value)`` in SQL."""
    return Case(*(When(**{field: value}, then=Value(label)) for value, label in labels.items()), default=F(field), output_field=TextField())


def _enrolled_cells(course: Course) -> QuerySet:
    # f"{first} {last}".strip(): btrim() with every character str.strip() removes
    # first and last names are never NULL: || rather than Concat's COALESCE around each part
    joined = Func(F("user__first_name"), Value(" "), F("user__last_name"), arg_joiner=" || ", template="(%(expressions)s)")
    name = Func(
        joined,
        Value(csv_copy.WHITESPACE),
        function="btrim",
        output_field=TextField(),
    )
    return (
        _enrolled_qs(course)
        .order_by("id")
        .values_list("id", _course_name(course), "user__username", name, "user__email", "mode", "created", _label("source", _labels(Source.choices)),
                     "access_from", "access_until", periods.status_expression(timezone.now()))
    )


def _codes_qs(course: Course):
    return Scope("course", course=course).codes()




def _codes_annotated(course: Course) -> QuerySet:
    redemptions = (
        Redemption.objects.filter(code=OuterRef("pk")).order_by().values("code").annotate(n=Count("id")).values("n")
    )
    return (
        _codes_qs(course)
        .with_status()
        .annotate(redemption_count=Coalesce(Subquery(redemptions, output_field=IntegerField()), Value(0)))
        .order_by("id")
    )


def _codes_values(course: Course) -> QuerySet:
    return _codes_annotated(course).values_list(
        "code", "batch_id", "batch__prefix", "status_value", "uses", "max_uses", "expires_on", "redemption_count", "created",
        "batch__time_zone",
    )


def code_rows(course: Course) -> Iterator[list]:
    """Every code whose batch unlocks the course, with its derived status and
    redemptions, and the time zone its expiry day ends in (empty without one)."""
    statuses, unlimited = _labels(Status.choices), _("unlimited")
    rows = _codes_values(course).iterator(chunk_size=CHUNK_SIZE)
    for code, batch_id, prefix, status, uses, max_uses, expires_on, redeemed, created, time_zone in rows:
        batch = f"{batch_id} ({prefix})" if prefix else batch_id
        yield [
            course.display_name, code, batch, statuses.get(status, status), uses,
            max_uses if max_uses is not None else unlimited, expires_on, redeemed, created,
            time_zone if expires_on is not None else None,
        ]  # fmt: skip


def _codes_cells(course: Course) -> QuerySet:
    batch_id = Cast("batch_id", TextField())
    batch = Case(
        When(Q(batch__prefix__gt=""), then=Concat(batch_id, Value(" ("), "batch__prefix", Value(")"), output_field=TextField())),
        default=batch_id,
    )
    max_uses = Coalesce(Cast("max_uses", TextField()), Value(_("unlimited")), output_field=TextField())
    time_zone = Case(When(expires_on__isnull=False, then=F("batch__time_zone")), default=None, output_field=TextField())
    return _codes_annotated(course).values_list(
        "id", _course_name(course), "code", batch, _label("status_value", _labels(Status.choices)),
        "uses", max_uses, "expires_on", "redemption_count", "created", time_zone,
    )  # fmt: skip


# --- periods: who had (and completed) which period of access -----------------------
#
# A period that ended is read from the audit trail: the row that ended it (an
# ``expiry``, a ``renewal``, or any change from enrolled to not enrolled: an
# unenroll by any way, an undo) keeps the bounds the period had
# (``access_*_before``) and when it ended. The enrollment row itself gives the
# period it has now: ``current`` while active, ``unenrolled`` once ended by an
# unenroll whose row did not record the period (written before unenrolls
# recorded it; one whose end a row recorded is that row's already). One union,
# ordered by username, then audit rows before the enrollment's, each in id
# order (so a person's periods read oldest first).

ENDED_EXPIRY, ENDED_RENEWED, ENDED_UNENROLLED, ENDED_CURRENT = "expiry", "renewed", "unenrolled", "current"


def _has_period(prefix: str, suffix: str = "") -> Q:
    return Q(**{f"{prefix}access_from{suffix}__isnull": False}) | Q(**{f"{prefix}access_until{suffix}__isnull": False})


# The audit rows that end a period: an expiry, a renewal (the next period
# follows), or anything that took an enrolled person out of the course.
_ENDS_A_PERIOD = Q(source__in=(Source.EXPIRY, Source.RENEWAL)) | (Q(state_before=State.ENROLLED) & ~Q(state_after=State.ENROLLED))


def _same_bound(field: str, outer: str) -> Q:
    """``field`` equals the outer row's ``outer``, an open side (NULL) included."""
    return Q(**{field: OuterRef(outer)}) | (Q(**{f"{field}__isnull": True}) & Q(IsNull(OuterRef(outer), True)))


def _periods_union(course: Course, *, cells: bool) -> QuerySet:
    """The report's rows: username, email, access_from, access_until, ended,
    ended_at, then the ordering columns (branch, id); with ``cells`` the
    ordering key comes first as one PostgreSQL row value, for ``csv_copy``."""
    text: dict[str, Any] = {"output_field": TextField()}
    ended_audit = Case(
        When(source=Source.EXPIRY, then=Value(ENDED_EXPIRY)), When(source=Source.RENEWAL, then=Value(ENDED_RENEWED)),
        default=Value(ENDED_UNENROLLED), **text,
    )
    audits = (
        EnrollmentAudit.objects.filter(_ENDS_A_PERIOD, course=course, user__isnull=False)
        .filter(_has_period("", "_before"))
        .annotate(branch=Value(0), username=F("user__username"), email=F("user__email"), period_from=F("access_from_before"),
                  period_until=F("access_until_before"), ended=ended_audit, ended_at=F("created"))
    )  # fmt: skip
    # An ended enrollment whose end a row recorded (the bounds it kept are that row's) is listed by that row.
    recorded = EnrollmentAudit.objects.filter(
        _ENDS_A_PERIOD, _same_bound("access_from_before", "access_from"), _same_bound("access_until_before", "access_until"),
        course=course, user=OuterRef("user"),
    )
    enrollments = (
        Enrollment.objects.filter(course=course)
        .filter(_has_period(""))
        .exclude(Q(is_active=False) & Exists(recorded))
        .annotate(branch=Value(1), username=F("user__username"), email=F("user__email"), period_from=F("access_from"),
                  period_until=F("access_until"),
                  ended=Case(When(is_active=True, then=Value(ENDED_CURRENT)), default=Value(ENDED_UNENROLLED), **text),
                  ended_at=Case(When(is_active=False, then=F("updated")), default=None))
    )  # fmt: skip
    # No ordering within the union's parts (SQLite refuses one; the audit's Meta has one).
    audits, enrollments = audits.order_by(), enrollments.order_by()
    columns = ["username", "email", "period_from", "period_until", "ended", "ended_at"]
    if cells:
        key = Func(F("username"), F("branch"), F("id"), function="ROW", **text)
        audits, enrollments = audits.annotate(k=key), enrollments.annotate(k=key)
        return audits.values_list("k", *columns).union(enrollments.values_list("k", *columns), all=True).order_by("k")
    columns += ["branch", "id"]
    return audits.values_list(*columns).union(enrollments.values_list(*columns), all=True).order_by("username", "branch", "id")


def _periods_values(course: Course) -> QuerySet:
    return _periods_union(course, cells=False)


def period_rows(course: Course) -> Iterator[list]:
    """One row per person and period of access in the course: its bounds, how
    it ended (``expiry``, ``renewed``, ``unenrolled``, or ``current`` while it
    runs) and when: an ended period from the audit row that ended it, so it
    stays listed once the person is enrolled again with another. Periods ended
    before the audit trail kept bounds (but for the enrollment's last), and
    enrollments that never had a period, are not listed."""
    for username, email, access_from, access_until, ended, ended_at, _branch, _id in _periods_values(course).iterator(chunk_size=CHUNK_SIZE):
        yield [username, email, access_from, access_until, ended, ended_at]


def _periods_cells(course: Course) -> QuerySet:
    return _periods_union(course, cells=True)


REPORTS: dict[str, ReportSpec] = {
    ReportTask.Kind.MAY_ENROLL: ReportSpec(
        header=MAY_ENROLL_HEADER,
        name="may_enroll_info",
        queryset=_may_enroll_qs,
        rows=may_enroll_rows,
        values=_may_enroll_values,
        cells=_may_enroll_cells,
        kinds=(PLAIN, TEXT, BOOL, TEXT, DATETIME),
    ),
    ReportTask.Kind.ENROLLED_PROFILES: ReportSpec(
        header=ENROLLED_HEADER,
        name="enrolled_profiles",
        queryset=_enrolled_qs,
        rows=enrolled_profile_rows,
        values=_enrolled_values,
        cells=_enrolled_cells,
        kinds=(PLAIN, TEXT, TEXT, TEXT, TEXT, DATETIME, TEXT, DATETIME, DATETIME, PLAIN),
    ),
    ReportTask.Kind.CODES: ReportSpec(
        header=CODES_HEADER,
        name="codes",
        queryset=_codes_qs,
        rows=code_rows,
        values=_codes_values,
        cells=_codes_cells,
        kinds=(PLAIN, TEXT, TEXT, TEXT, PLAIN, PLAIN, DATE, PLAIN, DATETIME, TEXT),
    ),
    ReportTask.Kind.PERIODS: ReportSpec(
        header=["username", "email", "access_from", "access_until", "ended", "ended_at"],
        name="periods",
        queryset=_periods_values,
        rows=period_rows,
        values=_periods_values,
        cells=_periods_cells,
        kinds=(TEXT, TEXT, DATETIME, DATETIME, PLAIN, DATETIME),
    ),
}
