"""The course roster: one course's enrollments searched, filtered, sorted and
read a page at a time by a keyset cursor.

Which index serves what (PostgreSQL; the migrations add them):

- the first page and the date range, newest first: ``enrollment_course_created``
  (course, created, id), read backwards from the cursor;
- source with or without a date range: ``enrollment_course_source_created``
  (course, source, created, id);
- status and mode: ``enrollment_course_active_mode`` (course, is_active, mode);
  the period statuses (upcoming, expired) add a range on ``access_from`` or
  ``access_until``, read by the partial indexes ``enrollment_course_upcoming``
  and ``enrollment_course_ends`` (rows with a period only, so they stay small);
- sort by last change: ``enrollment_course_updated`` (course, updated, id);
- the search (any part of username, email or full name, any case): the trigram
  GIN index ``accounts_user_search_trgm`` over ``roster_search_text``, whose
  matches reach their enrollment through the (user, course) unique index.
  SQLite has no trigram index; the same query scans there, which its sizes allow.

A page is one query for its rows (the cohort name comes by a subquery over the
(user, course) unique index of cohort memberships) and one COUNT over the
filtered rows: never an OFFSET, so page 200 costs what page 1 does."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import CharField, F, Func, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from courses.models import Cohort, CohortMembership, Course
from enrollment_site.lib.errors import AppError

from .. import periods
from ..models import Enrollment, EnrollmentCount, Source

PAGE_SIZE = 50

# The sort keys the table and the API offer (``-key`` for descending), and the
# column each orders by; ``id`` breaks ties in the same direction.
SORTS = {
    "created": "created",
    "updated": "updated",
    "username": "user__username",
    "email": "user__email",
    "mode": "mode",
}
DEFAULT_SORT = "-created"
SORT_CHOICES = [key for name in SORTS for key in (name, f"-{name}")]

# The roster's statuses (filter values, the Status column, the exports and the
# API): ``periods.status`` with "unenrolled" for its ``inactive``.
STATUS_ACTIVE = "active"
STATUS_UPCOMING = "upcoming"
STATUS_EXPIRED = "expired"
STATUS_UNENROLLED = "unenrolled"
STATUSES = (STATUS_ACTIVE, STATUS_UPCOMING, STATUS_EXPIRED, STATUS_UNENROLLED)
STATUS_LABELS = {
    STATUS_ACTIVE: periods.STATUS_LABELS[periods.ACTIVE], STATUS_UPCOMING: periods.STATUS_LABELS[periods.UPCOMING],
    STATUS_EXPIRED: periods.STATUS_LABELS[periods.EXPIRED], STATUS_UNENROLLED: periods.STATUS_LABELS[periods.INACTIVE],
}
_PERIOD_STATUS = {STATUS_ACTIVE: periods.ACTIVE, STATUS_UPCOMING: periods.UPCOMING, STATUS_EXPIRED: periods.EXPIRED,
                  STATUS_UNENROLLED: periods.INACTIVE}
_ROSTER_STATUS = {value: key for key, value in _PERIOD_STATUS.items()}


def roster_export_header() -> list[str]:
    """The header row of the learners exports, in the active language (the
    person exporting reads it). In English it is the documented column names
    (``username, full_name, …``), the same order in every language."""
    return [
        pgettext("learners export column", "username"), pgettext("learners export column", "full_name"),
        pgettext("learners export column", "email"), pgettext("learners export column", "mode"),
        pgettext("learners export column", "status"), pgettext("learners export column", "source"),
        pgettext("learners export column", "cohort"), pgettext("learners export column", "enrolled_at"),
        pgettext("learners export column", "last_changed"), pgettext("learners export column", "access_from"),
        pgettext("learners export column", "access_until"),
    ]


def roster_status(*, is_active: bool, access_from: datetime | None, access_until: datetime | None, now: datetime | None = None) -> str:
    """An enrollment's status as the roster says it (``periods.status``, "unenrolled" for "inactive")."""
    value = periods.status(is_active=is_active, access_from=access_from, access_until=access_until, now=now or timezone.now())
    return _ROSTER_STATUS[value]
NO_COHORT = "none"


class InvalidCursor(AppError):
    """A ``cursor`` that this selector did not write, or wrote for another sort."""

    message = "Invalid cursor: use the Next and Previous links of a page."
    code = "invalid_cursor"

    def __init__(self, message: str | None = None):
        super().__init__(message or _("Invalid cursor: use the Next and Previous links of a page."), field="cursor")


def roster_search_text():
    """Username, email, first and last name of the enrollment's user as one
    text, space separated. The trigram index ``accounts_user_search_trgm``
    indexes exactly this expression (upper-cased, as ``icontains`` compares), so
    keep the two the same. ``||`` rather than CONCAT(): PostgreSQL only indexes
    immutable expressions, and the columns are never NULL."""
    return Func(
        F("user__username"), F("user__email"), F("user__first_name"), F("user__last_name"),
        template="(%(expressions)s)", arg_joiner=" || ' ' || ", output_field=CharField(),
    )


@dataclass(frozen=True)
class RosterQuery:
    """What the table shows: every field empty means every enrollment, newest first.

    ``search`` matches when each of its words is part of the username, email
    or full name (any case); ``status`` is one of ``STATUSES`` (enrolled now,
    not begun, period ended, unenrolled: ``periods.status_q``);
    ``cohort`` a cohort of the course, or ``no_cohort`` for learners in none;
    ``enrolled_from``/``enrolled_to`` are days in the site's time zone, both
    included."""

    search: str = ""
    status: str = ""
    mode: str = ""
    source: str = ""
    cohort: Cohort | None = None
    no_cohort: bool = False
    enrolled_from: date | None = None
    enrolled_to: date | None = None
    sort: str = DEFAULT_SORT

    @property
    def terms(self) -> list[str]:
        return self.search.split()

    @property
    def is_filtered(self) -> bool:
        return bool(self.search.strip() or self.status or self.mode or self.source or self.cohort or self.no_cohort
                    or self.enrolled_from or self.enrolled_to)


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def roster_filtered(*, course: Course, query: RosterQuery) -> QuerySet[Enrollment]:
    """The course's enrollments that match ``query``, unordered and bare (for
    counting, for the ids of a bulk action, and as the base of the rows)."""
    qs = Enrollment.objects.filter(course=course)
    terms = query.terms
    if terms:
        qs = qs.alias(search_text=roster_search_text())
        for term in terms:
            # icontains escapes % and _, so what is typed is matched literally.
            qs = qs.filter(search_text__icontains=term)
    if query.status:
        qs = qs.filter(periods.status_q(_PERIOD_STATUS[query.status], timezone.now()))
    if query.mode:
        qs = qs.filter(mode=query.mode)
    if query.source:
        qs = qs.filter(source=query.source)
    if query.cohort is not None:
        qs = qs.filter(user_id__in=CohortMembership.objects.filter(cohort=query.cohort).values("user_id"))
    elif query.no_cohort:
        qs = qs.exclude(user_id__in=CohortMembership.objects.filter(course=course).values("user_id"))
    # Ranges on the timestamp rather than on its date, so the indexes on created serve them.
    if query.enrolled_from is not None:
        qs = qs.filter(created__gte=_day_start(query.enrolled_from))
    if query.enrolled_to is not None:
        qs = qs.filter(created__lt=_day_start(query.enrolled_to + timedelta(days=1)))
    return qs


def roster_count(*, course: Course, query: RosterQuery) -> int:
    """How many enrollments match ``query``: one query, over the course's
    counters when the query filters by nothing but mode (the table as it
    opens), else a COUNT over the matching rows. A status needs the rows: the
    counters count active rows, and a period's start or end moves a row from
    one status to another without writing it."""
    counted = _count_from_counters(course=course, query=query)
    return roster_filtered(course=course, query=query).order_by().count() if counted is None else counted


def _count_from_counters(*, course: Course, query: RosterQuery) -> int | None:
    """The count of ``query``'s rows from ``EnrollmentCount`` (a few rows
    whatever the course's size), or None for a query the counters cannot answer."""
    if query.search.strip() or query.status or query.source or query.cohort or query.no_cohort or query.enrolled_from or query.enrolled_to:
        return None
    counters = EnrollmentCount.objects.filter(course=course)
    if query.mode:
        counters = counters.filter(mode=query.mode)
    return counters.aggregate(n=Sum(F("active") + F("inactive")))["n"] or 0


def roster_rows(*, course: Course, query: RosterQuery) -> QuerySet[Enrollment]:
    """The matching enrollments in ``query.sort`` order (``id`` breaking ties),
    each with its user and ``cohort_name`` (None outside any cohort): one
    query for any number of rows, for the exports (model instances, read with
    ``iterator()``). A page of the table reads the same rows lighter: ``roster_page``."""
    return (
        _in_order(roster_filtered(course=course, query=query), query.sort)
        .select_related("user")
        .only(
            "id", "user_id", "course_id", "mode", "is_active", "source", "created", "updated", "access_from", "access_until",
            "user__username", "user__email", "user__first_name", "user__last_name",
        )
    )


def _in_order(qs: QuerySet[Enrollment], sort: str) -> QuerySet[Enrollment]:
    """``qs`` with ``cohort_name`` (by a subquery over the (user, course) unique
    index of cohort memberships) in ``sort`` order, ``id`` breaking ties."""
    column, descending = _sort_column(sort)
    cohort_name = CohortMembership.objects.filter(course_id=OuterRef("course_id"), user_id=OuterRef("user_id")).values("cohort__name")[:1]
    direction = "-" if descending else ""
    return qs.annotate(cohort_name=Subquery(cohort_name)).order_by(f"{direction}{column}", f"{direction}id")


_SOURCE_LABELS = dict(Source.choices)


class RosterUser:
    """The learner of a ``RosterRow``: the four fields the table shows, read
    like a ``User``'s."""

    __slots__ = ("id", "username", "email", "first_name", "last_name")

    def __init__(self, id: int, username: str, email: str, first_name: str, last_name: str):
        self.id, self.username, self.email, self.first_name, self.last_name = id, username, email, first_name, last_name

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class RosterRow:
    """One row of a roster page, read like an ``Enrollment`` of ``roster_rows``
    (``pk``, ``user.username``, ``get_source_display()``, ``cohort_name``…) but
    built from a plain tuple: a page is read on every keystroke of the search,
    and two model instances a row cost more than the page's query."""

    __slots__ = ("id", "user_id", "mode", "is_active", "source", "created", "updated", "access_from", "access_until", "cohort_name", "user")

    # The columns, in the order of ``__init__``'s arguments, then the user's.
    COLUMNS = ("id", "user_id", "mode", "is_active", "source", "created", "updated", "access_from", "access_until", "cohort_name",
               "user__username", "user__email", "user__first_name", "user__last_name")

    def __init__(self, id, user_id, mode, is_active, source, created, updated, access_from, access_until, cohort_name,
                 username, email, first_name, last_name):
        self.id, self.user_id, self.mode, self.is_active, self.source = id, user_id, mode, is_active, source
        self.created, self.updated, self.cohort_name = created, updated, cohort_name
        self.access_from, self.access_until = access_from, access_until
        self.user = RosterUser(user_id, username, email, first_name, last_name)

    @property
    def status(self) -> str:
        return roster_status(is_active=self.is_active, access_from=self.access_from, access_until=self.access_until)

    @property
    def status_label(self) -> str:
        return str(STATUS_LABELS[self.status])

    @property
    def pk(self) -> int:
        return self.id

    def get_source_display(self) -> str:
        return str(_SOURCE_LABELS.get(self.source, self.source))


def _sort_column(sort: str) -> tuple[str, bool]:
    descending = sort.startswith("-")
    column = SORTS.get(sort.lstrip("-"))
    if column is None:
        raise AppError(_("Unknown sort %(sort)s. Choose from %(choices)s.") % {"sort": repr(sort), "choices": ", ".join(SORT_CHOICES)},
                       code="invalid_sort", field="sort")
    return column, descending


@dataclass
class RosterPage:
    """One page of the roster: its ``rows``, the ``total`` matching the query,
    and cursors for the pages either side (None at either end)."""

    rows: list[RosterRow]
    total: int
    next_cursor: str | None = None
    previous_cursor: str | None = None
    page_size: int = PAGE_SIZE
    query: RosterQuery = field(default_factory=RosterQuery)

    # What the shared _keyset_pages.html template asks of a page.
    @property
    def is_first(self) -> bool:
        return self.previous_cursor is None

    @property
    def has_other_pages(self) -> bool:
        return bool(self.next_cursor or self.previous_cursor)


def roster_page(*, course: Course, query: RosterQuery, cursor: str = "", page_size: int = PAGE_SIZE, count: bool = True) -> RosterPage:
    """The page of the roster after (or, for a previous-page cursor, before)
    ``cursor``; the first page without one. Two queries (one without
    ``count``), whatever the size of the course and however far the cursor.

    The rows are ``RosterRow``s: the columns of ``roster_rows`` as plain values.
    Raises ``InvalidCursor`` for a cursor this function did not write for the same sort."""
    column, descending = _sort_column(query.sort)
    position = _cursor_decode(cursor, sort=query.sort) if cursor else None
    backwards = bool(position and position["r"])
    # Built once for the rows and the COUNT: building a queryset costs about
    # what a small indexed page costs the database.
    filtered = roster_filtered(course=course, query=query)
    rows_qs = _in_order(filtered, query.sort)
    # Going back reads the other way from the cursor, then turns the rows round.
    forward_desc = descending != backwards
    if backwards:
        rows_qs = rows_qs.reverse()
    if position is not None:
        rows_qs = _after(rows_qs, column, position["v"], position["i"], descending=forward_desc)
    rows = [RosterRow(*values) for values in rows_qs.values_list(*RosterRow.COLUMNS)[: page_size + 1]]
    more = len(rows) > page_size
    rows = rows[:page_size]
    if backwards:
        rows.reverse()
    page = RosterPage(rows=rows, total=roster_count(course=course, query=query) if count else -1, page_size=page_size, query=query)
    if rows:
        if more or backwards:
            page.next_cursor = _cursor_encode(rows[-1], column=column, sort=query.sort, backwards=False)
        if position is not None and (more or not backwards):
            page.previous_cursor = _cursor_encode(rows[0], column=column, sort=query.sort, backwards=True)
    return page


def _after(qs: QuerySet[Enrollment], column: str, value, pk: int, *, descending: bool) -> QuerySet[Enrollment]:
    """Rows strictly after (value, pk) in the order (column, id), both
    ascending or both descending. Written as a range on ``column`` minus its
    ties already shown, so that an index on (…, column, id) starts at the cursor."""
    if descending:
        return qs.filter(**{f"{column}__lte": value}).exclude(Q(**{column: value}) & Q(id__gte=pk))
    return qs.filter(**{f"{column}__gte": value}).exclude(Q(**{column: value}) & Q(id__lte=pk))


def _sort_value(enrollment: Enrollment | RosterRow, column: str):
    value = enrollment
    for part in column.split("__"):
        value = getattr(value, part)
    return value


def _cursor_encode(enrollment: Enrollment | RosterRow, *, column: str, sort: str, backwards: bool) -> str:
    value = _sort_value(enrollment, column)
    data = {"s": sort, "v": value.isoformat() if isinstance(value, datetime) else value, "i": enrollment.pk}
    if backwards:
        data["r"] = 1
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode("ascii").rstrip("=")


def _cursor_decode(cursor: str, *, sort: str) -> dict:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4)))
        if not isinstance(data, dict):
            raise ValueError(cursor)
        pk, value = data["i"], data["v"]
        if not isinstance(pk, int) or isinstance(pk, bool) or pk < 0 or not isinstance(value, str):
            raise ValueError(cursor)
    except (binascii.Error, UnicodeError, ValueError, TypeError, KeyError, RecursionError):
        raise InvalidCursor() from None
    if data.get("s") != sort:
        raise InvalidCursor(_("This cursor belongs to another sort order: start again from the first page."))
    column, _descending = _sort_column(sort)
    if column in ("created", "updated"):
        try:
            value = parse_datetime(value)
        except ValueError:
            value = None
        if value is None or value.tzinfo is None:
            raise InvalidCursor()
    return {"v": value, "i": pk, "r": bool(data.get("r"))}


def roster_ids(*, course: Course, query: RosterQuery) -> list[int]:
    """The ids of every enrollment matching ``query``, in id order: what a bulk
    action over "every row matching the filter" applies to. One query."""
    return list(roster_filtered(course=course, query=query).order_by("id").values_list("id", flat=True))


def roster_selected_ids(*, course: Course, ids: list[int]) -> list[int]:
    """Those of ``ids`` that are enrollments of ``course``, in id order (a
    selection may be stale, or hold guessed ids of other courses). One query."""
    return list(Enrollment.objects.filter(course=course, pk__in=ids).order_by("id").values_list("id", flat=True))


def roster_usernames(*, course: Course, ids: list[int], limit: int = 10) -> list[str]:
    """The usernames of the first ``limit`` of these enrollments of ``course``
    (a confirmation page names a few of the people it touches). One query."""
    return list(
        Enrollment.objects.filter(course=course, pk__in=ids[:limit]).order_by("user__username").values_list("user__username", flat=True)
    )
