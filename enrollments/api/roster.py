"""GET /api/courses/v1/<course_key>/enrollments/: the course roster of the
Learners tab for programs, with the same search, filters, sort and keyset
cursor (``enrollments.selectors.roster``), for the same people: the course's
team and platform administrators."""

import re

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from courses.models import COURSE_KEY_PATTERN, Mode
from courses.selectors import course_for_team_member
from enrollments.forms_roster import SEARCH_MAX_LENGTH, RosterFilterForm
from enrollments.models import Source
from enrollments.selectors.roster import NO_COHORT, SORT_CHOICES, STATUSES, InvalidCursor, roster_page

from .serializers import VALIDATION_ERROR_SCHEMA, ErrorSerializer
from .views import RETRY_AFTER, THROTTLED, UNAUTHORIZED, ApiViewMixin

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class RosterEnrollmentSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The enrollment's id (what the bulk actions of the Learners tab take).")
    username = serializers.CharField(source="user.username")
    full_name = serializers.CharField(source="user.get_full_name", help_text="First and last name; empty when unknown.")
    email = serializers.EmailField(source="user.email")
    mode = serializers.CharField()
    status = serializers.SerializerMethodField(
        help_text="active (enrolled now), upcoming (enrolled, the period not begun), expired (the period has ended) or unenrolled.",
    )
    cohort = serializers.CharField(source="cohort_name", allow_null=True, help_text="The learner's cohort in this course, or null.")
    enrolled_at = serializers.DateTimeField(source="created")
    last_changed = serializers.DateTimeField(source="updated")
    access_from = serializers.DateTimeField(allow_null=True, help_text="The start of the access period, or null for none.")
    access_until = serializers.DateTimeField(allow_null=True, help_text="The end of the access period, or null for no end.")

    def get_status(self, row) -> str:
        return row.status

    def get_fields(self):
        # Declared here: a class attribute named "source" would shadow Field.source for type checkers.
        fields = super().get_fields()
        fields["source"] = serializers.ChoiceField(choices=Source.values, help_text="How the learner first came in.")
        return {name: fields[name] for name in FIELD_ORDER}


FIELD_ORDER = ["id", "username", "full_name", "email", "mode", "status", "source", "cohort", "enrolled_at", "last_changed", "access_from", "access_until"]


class RosterPageSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="How many enrollments match the search and filters (all pages).")
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null.")
    results = RosterEnrollmentSerializer(many=True)


def _param(name, description, **schema):
    return OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.QUERY, required=False, description=description, **schema)


PARAMETERS = [
    OpenApiParameter("course_key", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=f"^{COURSE_KEY_PATTERN}$",
                     description="The course key, course-v1:ORG+NUMBER+RUN."),
    _param("q", f"Search: each word (up to {SEARCH_MAX_LENGTH} characters in all) must be part of the username, email or full name; any case."),
    _param("status", "active (enrolled now), upcoming (the period not begun), expired (the period has ended) or unenrolled.",
           enum=list(STATUSES)),
    _param("mode", "Only this mode.", enum=Mode.values),
    _param("source", "Only learners who came in this way.", enum=Source.values),
    _param("cohort", f"A cohort's id in this course, or `{NO_COHORT}` for learners in no cohort."),
    OpenApiParameter("enrolled_from", OpenApiTypes.DATE, OpenApiParameter.QUERY, required=False,
                     description="Enrolled on or after this day (YYYY-MM-DD, the site's time zone)."),
    OpenApiParameter("enrolled_to", OpenApiTypes.DATE, OpenApiParameter.QUERY, required=False,
                     description="Enrolled on or before this day (YYYY-MM-DD, the site's time zone)."),
    _param("sort", "The order: a column, `-` first for descending; `-created` (newest first) by default.", enum=SORT_CHOICES),
    _param("cursor", "The pagination cursor, as found in the `next` and `previous` links."),
    OpenApiParameter("page_size", OpenApiTypes.INT, OpenApiParameter.QUERY, required=False,
                     description=f"Rows per page: {DEFAULT_PAGE_SIZE} by default, at most {MAX_PAGE_SIZE}."),
    RETRY_AFTER,
]


EXAMPLES = [
    OpenApiExample(
        "A search",
        response_only=True,
        status_codes=["200"],
        value={
            "count": 1,
            "next": None,
            "previous": None,
            "results": [{
                "id": 4711, "username": "jdoe", "full_name": "Jane Doe", "email": "jane.doe@example.com", "mode": "verified",
                "status": "active", "source": "code", "cohort": "Group A",
                "enrolled_at": "2026-03-09T14:52:00Z", "last_changed": "2026-04-01T09:00:00Z",
                "access_from": None, "access_until": "2026-12-31T22:59:59.999999Z",
            }],
        },
    ),
    OpenApiExample("An unknown mode", response_only=True, status_codes=["400"],
                   value={"mode": ["Unknown mode “gold”: choose from audit, honor, verified, professional."]}),
]


class CourseRosterView(ApiViewMixin, APIView):
    throttle_scope = "enrollments_list"

    @extend_schema(
        operation_id="course_enrollments_list",
        summary="A course's roster",
        description=(
            "The enrollments of one course (active and unenrolled), as the Learners tab shows them: search, filters "
            "and sort combine; pages follow a keyset cursor (`next`, `previous`), so every page costs the same however "
            "far it is, and `count` is the number of matching enrollments. For the course's team and platform "
            "administrators. A malformed parameter answers 400 naming it."
        ),
        tags=["courses"],
        parameters=PARAMETERS,
        responses={
            200: RosterPageSerializer,
            400: OpenApiResponse(VALIDATION_ERROR_SCHEMA, description="A malformed parameter, named with its message (for example `mode=unknown`)."),
            401: UNAUTHORIZED,
            403: OpenApiResponse(ErrorSerializer, description="The caller is not on the course's team."),
            404: OpenApiResponse(ErrorSerializer, description="No course with this key."),
            429: THROTTLED,
        },
        examples=EXAMPLES,
    )
    def get(self, request, course_key):
        course = course_for_team_member(request, course_key)
        form = RosterFilterForm(request.query_params, course=course)
        if not form.is_valid():
            raise ValidationError({name: list(messages) for name, messages in form.errors.items()})
        page_size = _page_size(request.query_params.get("page_size"))
        try:
            page = roster_page(course=course, query=form.roster_query(), cursor=form.cleaned_data["cursor"], page_size=page_size)
        except InvalidCursor as exc:
            raise ValidationError({"cursor": [exc.message]}) from None
        url = request.build_absolute_uri()
        return Response({
            "count": page.total,
            "next": replace_query_param(url, "cursor", page.next_cursor) if page.next_cursor else None,
            "previous": replace_query_param(url, "cursor", page.previous_cursor) if page.previous_cursor else None,
            "results": RosterEnrollmentSerializer(page.rows, many=True).data,
        })


def _page_size(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    if not re.fullmatch(r"[0-9]{1,9}", raw) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise ValidationError({"page_size": [_("Give a whole number from 1 to %(max)s.") % {"max": MAX_PAGE_SIZE}]})
    return int(raw)

