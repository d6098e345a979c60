"""The enrollment list API's page (``GET /api/so2/v1/enrollments``): the
enrollments a user may see, newest first, one keyset page at a time.

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
newest first until it has a page; so each managed course is its own branch of
a ``UNION ALL``, each branch one index range limited to the page, and only
those few rows are merged and sorted."""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import DateTimeField, F, Func, IntegerField, QuerySet, Subquery, Value
from django.db.models.lookups import GreaterThan, LessThan

from accounts.rules import is_platform_admin
from courses.models import Course
from courses.rules import courses_managed_by

from ..models import Enrollment

# The columns of a row (dict keys): what the API shows, and the (created, id) its cursor is made of.
FIELDS = ("id", "created", "is_active", "mode")
JOINED = {"username": F("user__username"), "email": F("user__email"), "course_key": F("course__key")}


class _RowValue(Func):
    """A row value, ``(a, b)``: compared as a whole, ``(created, id) < (c, i)``
    is one index range on PostgreSQL (and SQLite understands it too), where
    ``created < c OR (created = c AND id < i)`` is not."""

    template = "(%(expressions)s)"


def _beyond(position: tuple[datetime, int], *, backwards: bool):
    created, pk = position
    row = _RowValue(F("created"), F("id"), output_field=DateTimeField())
    cursor = _RowValue(Value(created, output_field=DateTimeField()), Value(pk, output_field=IntegerField()), output_field=DateTimeField())
    return GreaterThan(row, cursor) if backwards else LessThan(row, cursor)


def enrollment_list_page(
    *, user, course_key: str = "", username: str = "", since: datetime | None = None,
    after: tuple[datetime, int] | None = None, backwards: bool = False, limit: int,
) -> list[dict]:
    """Up to ``limit`` enrollments ``user`` may see, as dicts of ``FIELDS`` and ``JOINED``:
    newest first after the (created, id) position ``after`` (exclusive), or
    with ``backwards`` oldest first before it.

    Platform admins see every enrollment; anyone else the enrollments of the
    courses they manage (``courses.rules.courses_managed_by``) and their own.
    Filters combine: ``course_key`` (an unknown key gives nothing),
    ``username``, ``since`` (created at or after). One query, whatever the
    size of the courses; two for anyone but a platform admin who asks for no
    course (the courses they manage, then a branch for each)."""
    order = ("created", "id") if backwards else ("-created", "-id")
    base = Enrollment.objects.all()
    if username:
        base = base.filter(user__username=username)
    if since is not None:
        base = base.filter(created__gte=since)
    if after is not None:
        base = base.filter(_beyond(after, backwards=backwards))

    branches: list[QuerySet[Enrollment]]
    if is_platform_admin(user):
        # The key's id as a one-time subquery: the planner then reads the course
        # from its index in order, where a join on the key would sort it all.
        by_key = Subquery(Course.objects.filter(key=course_key).values("pk"))
        branches = [base.filter(course_id=by_key) if course_key else base]
    elif course_key:
        managed = courses_managed_by(user=user)
        # The course's id if the user manages it (else NULL: nothing), looked up
        # once inside the query; and their own enrollment there if they do not.
        in_team = base.filter(course_id=Subquery(managed.filter(key=course_key).values("pk")))
        own = base.filter(user_id=user.pk, course__key=course_key).exclude(course__in=managed)
        branches = [in_team, own]
    else:
        managed_ids = list(courses_managed_by(user=user).values_list("pk", flat=True).order_by("pk"))
        branches = [base.filter(course_id=pk) for pk in managed_ids]
        # One's own enrollments, but once: not again in a course one manages.
        branches.append(base.filter(user_id=user.pk).exclude(course_id__in=managed_ids))

    pages = [branch.values(*FIELDS, **JOINED).order_by(*order) for branch in branches]
    if len(pages) == 1:
        return list(pages[0][:limit])
    if not connection.features.supports_slicing_ordering_in_compound:
        # SQLite cannot limit each part of a UNION: one query over every branch
        # instead, which its sizes (development, tests) allow.
        combined = branches[0]
        for branch in branches[1:]:
            combined = combined | branch
        return list(combined.values(*FIELDS, **JOINED).order_by(*order)[:limit])
    first, *rest = (page[:limit] for page in pages)
    return list(first.union(*rest, all=True).order_by(*order)[:limit])
