"""The enrollment list API's page (``GET /api/so2/v1/enrollments``): the
enrollments a user may see, newest first, one keyset page at a time, as the
API's items ready to serialize.

One hand-written statement per page, whatever the persona and filters: the
page is the request's only query besides authentication, costs no ORM
compilation, and its items come out of the database as the API writes them
(values, not model instances; on PostgreSQL even the dates as text).

Which index serves what (PostgreSQL), so that a page costs the same in a
course of a thousand enrollments and of a million:

- a course (``course_id`` filter, or each course a team member manages):
  ``enrollment_course_created`` (course, created, id), read from the cursor on;
- every course, for a platform administrator: ``enrollment_created`` (created, id);
- one person (``username``, and one's own enrollments): the (user, course)
  unique index, then a sort of that person's few rows.

A team member sees the courses they manage and their own enrollments
elsewhere. As one ``course IN (managed) OR user = me`` condition the planner
can use neither index for the order, and walks every enrollment of the site
newest first until it has a page; so on PostgreSQL each managed course is its
own index range limited to the page (a ``LATERAL`` join over the managed
courses, in the same statement), one's own enrollments another, and only
those few rows are merged and sorted. SQLite (development, tests) has no
``LATERAL``; it takes the single condition, which its sizes allow."""

from __future__ import annotations

import datetime
import functools
from typing import NamedTuple

from django.db import connection
from django.utils import timezone

from accounts.rules import is_platform_admin
from courses.rules import course_ids_managed_by_sql

from .. import periods

# Minutes, in the site's time zone: how the API writes a moment (MinuteDateTimeField).
MINUTE_FORMAT = "%Y-%m-%d %H:%M"


class Column(NamedTuple):
    """One key of an item: its SQL, and on PostgreSQL for a moment the SQL of
    its text. ``moment`` columns are written as ``MINUTE_FORMAT`` (null stays null)."""

    key: str
    sql: str
    moment: bool = False


# The items' keys, in the API's order. One more key is one more line here
# (and in the serializer that documents it).
COLUMNS = (
    Column("username", "u.username"),
    Column("email", "u.email"),
    Column("course_id", "c.key"),
    Column("is_active", "e.is_active"),
    Column("mode", "e.mode"),
    Column("created", "e.created", moment=True),
    Column("access_from", "e.access_from", moment=True),
    Column("access_until", "e.access_until", moment=True),
    # periods.status(), row for row (tests hold them equal); each %s is the request's time.
    Column(
        "status",
        f"CASE WHEN e.access_until <= %s THEN '{periods.EXPIRED}' WHEN NOT e.is_active THEN '{periods.INACTIVE}' "
        f"WHEN e.access_from > %s THEN '{periods.UPCOMING}' ELSE '{periods.ACTIVE}' END",
    ),
)
KEYS = tuple(column.key for column in COLUMNS)
# A row's created as the text of its exact moment, for ListRow (UTC, to the microsecond, as PostgreSQL keeps it).
CREATED_ISO = """to_char(e.created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""

# The filter for each status value, periods.status_q() in SQL: %s is the request's time.
STATUS_SQL = {
    periods.EXPIRED: ("e.access_until <= %s", 1),
    periods.INACTIVE: ("NOT e.is_active AND (e.access_until IS NULL OR e.access_until > %s)", 1),
    periods.UPCOMING: ("e.is_active AND e.access_from > %s AND (e.access_until IS NULL OR e.access_until > %s)", 2),
    periods.ACTIVE: (
        "e.is_active AND (e.access_from IS NULL OR e.access_from <= %s) AND (e.access_until IS NULL OR e.access_until > %s)", 2,
    ),
}


class ListRow(NamedTuple):
    """An item of the API's page, and the (created, id) position its cursor is
    made of: ``created`` is read from its ISO text when asked for, as a page's
    links need the first row's and the last row's only (a hundred datetimes
    made and thrown away would cost more than the page's query)."""

    item: dict
    created_iso: str
    id: int

    @property
    def created(self) -> datetime.datetime:
        return datetime.datetime.fromisoformat(self.created_iso)


class _Sql:
    """A statement being written: text and the names of its positional
    parameters, kept together (each name stands for a tuple of values, given
    when the statement runs)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[str] = []

    def add(self, text: str, *params: str) -> _Sql:
        self.parts.append(text)
        self.params.extend(params)
        return self

    def extend(self, other: _Sql) -> _Sql:
        self.parts.extend(other.parts)
        self.params.extend(other.params)
        return self

    @property
    def text(self) -> str:
        return " ".join(self.parts)


def _db(moment: datetime.datetime) -> object:
    # As the ORM would pass it: SQLite compares datetimes as UTC text without an offset.
    return connection.ops.adapt_datetimefield_value(moment)


class _Shape(NamedTuple):
    """What a page's statement text depends on: which filters are given, not
    their values. A few dozen shapes in all, each written once per process."""

    platform_admin: bool
    managed_sql: str  # courses.rules.course_ids_managed_by_sql's text (not used for a platform admin)
    course_key: bool
    username: bool
    since: bool
    status: str
    after: bool
    backwards: bool
    postgres: bool


def enrollment_list_page(
    *, user, course_key: str = "", username: str = "", since: datetime.datetime | None = None,
    status: str = "", after: tuple[datetime.datetime, int] | None = None, backwards: bool = False, limit: int,
    now: datetime.datetime | None = None,
) -> list[ListRow]:
    """Up to ``limit`` enrollments ``user`` may see, as the API's items (keys
    ``KEYS``; moments as ``YYYY-MM-DD HH:MM`` in the current time zone, or None;
    ``status`` as ``periods.status`` at ``now``, the request's time): newest
    first after the (created, id) position ``after`` (exclusive), or with
    ``backwards`` oldest first before it.

    Platform admins see every enrollment; anyone else the enrollments of the
    courses they manage (``courses.rules.courses_managed_by``) and their own.
    Filters combine: ``course_key`` (an unknown key gives nothing),
    ``username``, ``since`` (created at or after), ``status`` (one of
    ``periods.STATUSES``; ValueError for anything else). One query, whatever
    the persona, the filters and the size of the courses; its text is written
    once per shape of request (``_statement``) and only the values change."""
    now = now or timezone.now()
    if status and status not in STATUS_SQL:
        raise ValueError(status)
    postgres = connection.vendor == "postgresql"
    managed_sql, managed_params = course_ids_managed_by_sql(user=user)
    shape = _Shape(
        platform_admin=is_platform_admin(user), managed_sql=managed_sql, course_key=bool(course_key), username=bool(username),
        since=since is not None, status=status, after=after is not None, backwards=backwards, postgres=postgres,
    )
    text, names = _statement(shape)
    zone = timezone.get_current_timezone()
    values: dict[str, tuple] = {
        "user": (user.pk,), "managed": managed_params, "course_key": (course_key,), "username": (username,),
        "since": (_db(since),) if since is not None else (), "now": (_db(now),), "limit": (limit,),
        "after": (_db(after[0]), after[1]) if after is not None else (),
        "zone": (timezone.get_current_timezone_name(),),  # PostgreSQL knows the same IANA names
    }
    with connection.cursor() as cursor:
        cursor.execute(text, [value for name in names for value in values[name]])
        rows = cursor.fetchall()
    width = len(COLUMNS)
    if postgres:
        # zip stops at the last key: the position columns after them are not read twice.
        return [ListRow(dict(zip(KEYS, row, strict=False)), row[width], row[width + 1]) for row in rows]
    return [_sqlite_row(row, width, zone) for row in rows]


@functools.lru_cache(maxsize=256)
def _statement(shape: _Shape) -> tuple[str, tuple[str, ...]]:
    """The page's statement for one shape of request: its text, and the names
    of its parameters in order (see ``enrollment_list_page`` for their values).
    Writing it costs more than PostgreSQL's reading of the page; so it is
    written once per shape and kept."""
    direction = "ASC" if shape.backwards else "DESC"
    order = f"ORDER BY e.created {direction}, e.id {direction}"

    # Conditions on the enrollment row itself, the same in every branch.
    conditions = _Sql()
    if shape.username:
        conditions.add("AND e.user_id = (SELECT id FROM accounts_user WHERE username = %s)", "username")
    if shape.since:
        conditions.add("AND e.created >= %s", "since")
    if shape.status:
        sql, times = STATUS_SQL[shape.status]
        conditions.add(f"AND ({sql})", *["now"] * times)
    if shape.after:
        # A row value: one index range on PostgreSQL, where created < c OR (created = c AND id < i) is not.
        conditions.add(f"AND (e.created, e.id) {'>' if shape.backwards else '<'} (%s, %s)", "after")

    def branch(where: str, *params: str) -> _Sql:
        """Up to ``limit`` enrollments of one index range, in the page's order."""
        inner = _Sql().add(f"SELECT e.* FROM enrollments_enrollment e WHERE {where}", *params).extend(conditions)  # noqa: S608 (constant text; values are parameters)
        return _Sql().add("SELECT * FROM (").extend(inner).add(f"{order} LIMIT %s) AS b", "limit")

    # The page's enrollments: the table itself under one condition, or the few
    # rows of several index ranges (aliased as the table, so that COLUMNS read them alike).
    course_by_key = "(SELECT id FROM courses_course WHERE key = %s)"
    managed_sql = shape.managed_sql
    source = _Sql()
    if shape.platform_admin:
        # The key's id as a one-time subquery: the planner then reads the course
        # from its index in order, where a join on the key would sort it all.
        source.add("enrollments_enrollment e WHERE")
        source.add(f"e.course_id = {course_by_key}" if shape.course_key else "TRUE", *(["course_key"] if shape.course_key else []))
        source.extend(conditions)
    elif shape.course_key:
        # The course's id if the user manages it (else NULL: nothing), and their
        # own enrollment there if they do not: each id looked up once, inside
        # the query, so that each branch is one index range from a constant.
        in_team = branch(f"e.course_id = (SELECT id FROM courses_course WHERE key = %s AND id IN ({managed_sql}))",  # noqa: S608
                         "course_key", "managed")
        own = branch(f"e.user_id = %s AND e.course_id = (SELECT id FROM courses_course WHERE key = %s AND id NOT IN ({managed_sql}))",  # noqa: S608
                     "user", "course_key", "managed")
        source.add("(").extend(in_team).add("UNION ALL").extend(own).add(") AS e")
    elif shape.postgres:
        per_course = (
            _Sql().add(f"SELECT b.* FROM ({managed_sql}) AS m (id) CROSS JOIN LATERAL (", "managed")  # noqa: S608
            .add("SELECT e.* FROM enrollments_enrollment e WHERE e.course_id = m.id").extend(conditions)
            .add(f"{order} LIMIT %s) AS b", "limit")
        )
        # One's own enrollments, but once: not again in a course one manages.
        own = branch(f"e.user_id = %s AND e.course_id NOT IN ({managed_sql})", "user", "managed")
        source.add("(").extend(per_course).add("UNION ALL").extend(own).add(") AS e")
    else:
        source.add(f"enrollments_enrollment e WHERE (e.course_id IN ({managed_sql}) OR e.user_id = %s)", "managed", "user")
        source.extend(conditions)

    select = _Sql()
    for column in COLUMNS:
        if column.moment and shape.postgres:
            select.add(f"to_char({column.sql} AT TIME ZONE %s, 'YYYY-MM-DD HH24:MI'),", "zone")
        else:
            select.add(f"{column.sql},", *["now"] * column.sql.count("%s"))
    # The people and courses of the page's rows only: joined after the rows are chosen.
    statement = (
        _Sql().add("SELECT").extend(select).add(f"{CREATED_ISO if shape.postgres else 'e.created'}, e.id FROM (SELECT * FROM").extend(source).add(f"{order} LIMIT %s) AS e", "limit")
        .add(f"JOIN accounts_user u ON u.id = e.user_id JOIN courses_course c ON c.id = e.course_id {order}")
    )
    return statement.text, tuple(statement.params)


def _moment(value) -> datetime.datetime | None:
    # SQLite hands back naive UTC (or text where the column's type is lost).
    if value is None or isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value


def _sqlite_row(row, width: int, zone) -> ListRow:
    item = {}
    for column, value in zip(COLUMNS, row[:width], strict=True):
        if column.moment:
            moment = _moment(value)
            value = moment.astimezone(zone).strftime(MINUTE_FORMAT) if moment is not None else None
        elif column.key == "is_active":
            value = bool(value)
        item[column.key] = value
    created = _moment(row[width])
    assert created is not None  # a NOT NULL column
    return ListRow(item, created.isoformat(), row[width + 1])
