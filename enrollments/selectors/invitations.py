"""Reads of a course's invitations: its allowances not yet used.

The table is newest first in keyset pages from the partial index
``allowance_course_open`` (course, -created, -id WHERE used_at IS NULL); each
row carries its latest invitation email (when and its status) from the
outbox, looked up per row of the page through ``notification_course_recipient``
(two index probes per row, 50 rows a page)."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from courses.models import Course
from enrollment_site.lib.keyset import Cursor, KeysetPage, keyset_page

from ..models import Allowance, Notification

INVITATIONS_PAGE_SIZE = 50
MAX_SEARCH_LENGTH = 100


def open_invitations(*, course: Course, search: str = "") -> QuerySet[Allowance]:
    """The course's allowances not yet used, unordered, optionally those whose
    address contains ``search`` (any case; ``%`` and ``_`` are plain
    characters), with who invited them and their latest invitation email
    (``emailed_at`` and ``email_status``, None when none was sent)."""
    qs = Allowance.objects.filter(course=course, used_at__isnull=True)
    search = search.strip().lower()
    if search:
        qs = qs.filter(email_key__contains=search)
    latest = Notification.objects.filter(
        course=OuterRef("course"), recipient_key=OuterRef("email_key"), kind=Notification.Kind.ALLOWED
    ).order_by("-created", "-id")
    return qs.select_related("created_by").annotate(
        emailed_at=Subquery(latest.values("created")[:1]), email_status=Subquery(latest.values("status")[:1])
    )


def invitations_page(*, course: Course, search: str = "", cursor: Cursor | None, size: int = INVITATIONS_PAGE_SIZE) -> KeysetPage:
    """One page of the invitations table, newest first: one query."""
    return keyset_page(open_invitations(course=course, search=search), cursor=cursor, size=size)


def invitation_count(*, course: Course, search: str = "") -> int:
    """How many invitations match: one count over the partial index (a course's
    open invitations are people without an account yet, not its whole roster)."""
    qs = Allowance.objects.filter(course=course, used_at__isnull=True)
    if search.strip():
        qs = qs.filter(email_key__contains=search.strip().lower())
    return qs.count()


def invitation_ids(*, course: Course, search: str = "", ids: list[int] | None = None) -> list[int]:
    """The ids of the open invitations of the course that match ``search`` and,
    when given, are among ``ids`` (a selection; ids of other courses or of
    invitations used or revoked since drop out). One query."""
    qs = Allowance.objects.filter(course=course, used_at__isnull=True)
    if search.strip():
        qs = qs.filter(email_key__contains=search.strip().lower())
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return list(qs.order_by("id").values_list("id", flat=True))
