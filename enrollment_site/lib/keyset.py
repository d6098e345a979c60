"""Keyset pages over (created, id), newest first, for server-rendered lists.

A page is one index range scan from the last row shown: the first page of a
million rows costs what that of a thousand does, and so does the thousandth,
where an offset would read and throw away every row before it. The cursor is
the (created, id) of the row a page starts after, in the query string as an
opaque URL-safe token, so a page's address can be shared and the back button
works. A malformed cursor raises ``InvalidCursor`` (a clear message, never a
500)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from .errors import AppError

MAX_CURSOR_LENGTH = 200


class InvalidCursor(AppError):
    code = "invalid_cursor"
    message = cast(str, _("That page link is not valid (it may have been cut short). Start again from the first page."))

    def __init__(self, message: str | None = None):
        super().__init__(message, field="cursor")


def _token(data: dict[str, Any], back: bool) -> str:
    """A cursor's fields as an opaque URL-safe token (``b`` marks going newer)."""
    if back:
        data["b"] = 1
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode("ascii").rstrip("=")


def _fields(text: str) -> dict[str, Any]:
    """A token's fields; ``InvalidCursor`` when it is too long or not a token at all."""
    if len(text) > MAX_CURSOR_LENGTH:
        raise InvalidCursor()
    try:
        data = json.loads(base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4)))
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidCursor() from None
    if not isinstance(data, dict):
        raise InvalidCursor()
    return data


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after (``created``, ``pk``) going older, or before it
    going newer (``back``)."""

    created: datetime
    pk: int
    back: bool = False

    def encode(self) -> str:
        return _token({"c": self.created.isoformat(), "i": self.pk}, self.back)

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """The cursor of a query-string value; None for an empty one."""
        if not text:
            return None
        data = _fields(text)
        try:
            created = parse_datetime(data["c"])
            pk = int(data["i"])
            if created is None or created.tzinfo is None or pk < 0:
                raise ValueError(text)
        except (binascii.Error, UnicodeError, ValueError, TypeError, KeyError, OverflowError, AttributeError):
            raise InvalidCursor() from None
        return cls(created=created, pk=pk, back=bool(data.get("b")))


@dataclass
class KeysetPage:
    rows: list
    next_cursor: str | None  # older rows
    previous_cursor: str | None  # newer rows
    is_first: bool

    @property
    def has_other_pages(self) -> bool:
        return bool(self.next_cursor or self.previous_cursor)


def keyset_page(queryset: QuerySet, *, cursor: Cursor | None, size: int) -> KeysetPage:
    """One page of ``queryset`` newest first by (created, id), starting at
    ``cursor`` (None: the newest). One query of ``size + 1`` rows; the query
    shape lets an index on (<equality filters>, -created, -id) serve it."""
    if cursor is not None and cursor.back:
        # created >= c first, so that the index range starts at the cursor.
        qs = queryset.filter(created__gte=cursor.created).exclude(Q(created=cursor.created) & Q(id__lte=cursor.pk))
        rows = list(qs.order_by("created", "id")[: size + 1])
        has_more = len(rows) > size
        rows = rows[:size]
        rows.reverse()
        newer_exist, older_exist = has_more, True
    else:
        qs = queryset
        if cursor is not None:
            qs = qs.filter(created__lte=cursor.created).exclude(Q(created=cursor.created) & Q(id__gte=cursor.pk))
        rows = list(qs.order_by("-created", "-id")[: size + 1])
        has_more = len(rows) > size
        rows = rows[:size]
        newer_exist, older_exist = cursor is not None, has_more
    next_cursor = previous_cursor = None
    if rows:
        if older_exist:
            next_cursor = Cursor(rows[-1].created, rows[-1].pk).encode()
        if newer_exist:
            previous_cursor = Cursor(rows[0].created, rows[0].pk, back=True).encode()
    elif cursor is not None:
        # Past either end: offer the way back.
        if cursor.back:
            next_cursor = Cursor(cursor.created, cursor.pk).encode()
        else:
            previous_cursor = Cursor(cursor.created, cursor.pk, back=True).encode()
    return KeysetPage(rows=rows, next_cursor=next_cursor, previous_cursor=previous_cursor, is_first=cursor is None or not newer_exist)


# --- pages by id alone, for tables ordered newest first by id (the codes) ----------------------


@dataclass(frozen=True)
class IdCursor:
    """Where a page of an id-ordered table starts: after ``pk`` going older, or
    before it going newer (``back``). ``IdCursor(0, back=True)`` is the oldest page."""

    pk: int
    back: bool = False

    def encode(self) -> str:
        return _token({"i": self.pk}, self.back)

    @classmethod
    def decode(cls, text: str) -> IdCursor | None:
        """The cursor of a query-string value; None for an empty one."""
        if not text:
            return None
        data = _fields(text)
        try:
            pk = data["i"]
            if not isinstance(pk, int) or isinstance(pk, bool) or not 0 <= pk < 2**63:
                raise ValueError(text)
        except (binascii.Error, UnicodeError, ValueError, TypeError, KeyError, AttributeError):
            raise InvalidCursor() from None
        return cls(pk=pk, back=bool(data.get("b")))


def id_keyset_page(queryset: QuerySet, *, cursor: IdCursor | None, size: int) -> KeysetPage:
    """One page of ``queryset`` newest first by id, starting at ``cursor`` (None:
    the newest). One query of ``size + 1`` rows, an index range scan from the
    cursor (the primary key, or an index ending in id after the equality
    filters), whichever page it is."""
    if cursor is not None and cursor.back:
        rows = list(queryset.filter(id__gt=cursor.pk).order_by("id")[: size + 1])
        has_more = len(rows) > size
        rows = rows[:size]
        rows.reverse()
        # Going newer from the oldest end (pk 0) there may be nothing older.
        newer_exist, older_exist = has_more, cursor.pk > 0
    else:
        qs = queryset if cursor is None else queryset.filter(id__lt=cursor.pk)
        rows = list(qs.order_by("-id")[: size + 1])
        has_more = len(rows) > size
        rows = rows[:size]
        newer_exist, older_exist = cursor is not None, has_more
    next_cursor = previous_cursor = None
    if rows:
        if older_exist:
            next_cursor = IdCursor(rows[-1].pk).encode()
        if newer_exist:
            previous_cursor = IdCursor(rows[0].pk, back=True).encode()
    elif cursor is not None and cursor.pk > 0:
        # Past either end: offer the way back.
        if cursor.back:
            next_cursor = IdCursor(cursor.pk).encode()
        else:
            previous_cursor = IdCursor(cursor.pk, back=True).encode()
    return KeysetPage(rows=rows, next_cursor=next_cursor, previous_cursor=previous_cursor, is_first=cursor is None or not newer_exist)
