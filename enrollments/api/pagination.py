"""Keyset (cursor) pagination over (created, id), newest first.

DRF's CursorPagination positions on the first ordering field only and steps
over ties with an offset capped at 1,000; a batch enrolls thousands of people
with the same ``created``, so its pages would repeat. Here the cursor is the
(created, id) of the last row shown, which is unique, and every page is one
index range scan: the first page of a million rows costs what that of a
thousand does, and so does the thousandth."""

import base64
import binascii
import json
import re

from django.db.models import Q
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param


class EnrollmentCursorPagination(BasePagination):
    cursor_query_param = "cursor"
    page_size_query_param = "page_size"
    page_size = 100
    max_page_size = 1000
    invalid_cursor_message = gettext_lazy("Invalid cursor. Use the 'next' or 'previous' link of a page.")

    def paginate_queryset(self, queryset, request, view=None):
        def fetch(position, reverse, limit):
            qs = queryset.order_by("created", "id") if reverse else queryset.order_by("-created", "-id")
            if position is not None:
                created, pk = position
                # created >= c first, so that the index range starts at the cursor
                if reverse:
                    qs = qs.filter(created__gte=created).exclude(Q(created=created) & Q(id__lte=pk))
                else:
                    qs = qs.filter(created__lte=created).exclude(Q(created=created) & Q(id__gte=pk))
            return list(qs[:limit])

        return self.paginate(fetch, request, position_of=lambda row: (row.created, row.pk))

    def paginate(self, fetch, request, *, position_of):
        """The page ``fetch(position, reverse, limit)`` reads: up to ``limit``
        rows after the cursor's (created, id) ``position`` (exclusive), newest
        first, or with ``reverse`` oldest first before it. Returns the page's
        rows newest first and sets the links from ``position_of(row)``."""
        self.request = request
        self.page_size = self.get_page_size(request)
        position, reverse = self.decode_cursor(request)
        rows = fetch(position, reverse, self.page_size + 1)
        has_more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        if reverse:
            rows.reverse()
        self.next_position = self.previous_position = None
        if rows:
            first, last = position_of(rows[0]), position_of(rows[-1])
            if (has_more and not reverse) or (reverse and position is not None):
                self.next_position = last
            if (has_more and reverse) or (not reverse and position is not None):
                self.previous_position = first
        elif position is not None:
            # Past either end: offer the way back.
            if reverse:
                self.next_position = position
            else:
                self.previous_position = position
        return rows

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not re.fullmatch(r"[0-9]{1,100}", raw) or int(raw) < 1:
            raise ValidationError({self.page_size_query_param: [_("Give a whole number of at least 1.")]})
        return min(int(raw), self.max_page_size)

    # --- cursor encoding -----------------------------------------------------

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if not encoded:
            return None, False
        try:
            data = json.loads(base64.urlsafe_b64decode(encoded.encode("ascii") + b"=" * (-len(encoded) % 4)))
            created = parse_datetime(data["c"])
            pk = int(data["i"])
            reverse = bool(data.get("r"))
            if created is None or created.tzinfo is None or pk < 0:
                raise ValueError(encoded)
        except (binascii.Error, UnicodeError, ValueError, TypeError, KeyError, OverflowError):
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}) from None
        return (created, pk), reverse

    def encode_cursor(self, position, reverse: bool) -> str:
        created, pk = position
        data = {"c": created.isoformat(), "i": pk}
        if reverse:
            data["r"] = 1
        raw = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode("ascii")
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, raw.rstrip("="))

    def get_next_link(self):
        return self.encode_cursor(self.next_position, False) if self.next_position else None

    def get_previous_link(self):
        if not self.previous_position:
            return None
        return self.encode_cursor(self.previous_position, True)

    def get_paginated_response(self, data):
        return Response({"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri", "description": "The next (older) page, or null.",
                         "example": "https://your-platform-url.com/api/so2/v1/enrollments?cursor=eyJjIjoiMjAyMS0wMy0wOVQyMDoxNTowMCswMDowMCIsImkiOjQyfQ"},
                "previous": {"type": "string", "nullable": True, "format": "uri", "description": "The previous (newer) page, or null.", "example": None},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "The pagination cursor, as found in the 'next' and 'previous' links.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Number of results per page: {self.page_size} by default; larger values than {self.max_page_size} count as {self.max_page_size}.",
                "schema": {"type": "integer", "minimum": 1},
            },
        ]

