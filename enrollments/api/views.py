"""REST API views: thin wrappers that authenticate, validate with a
serializer, check permissions per course and call one service."""

import uuid
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from enrollment_site.lib.error_handlers import api_exception_handler as site_api_exception_handler
from enrollment_site.lib.gc_pause import without_gc
from enrollment_site.lib.parsers import BoundedJSONParser
from enrollments.models import Source
from enrollments.selectors import bulk_enroll_job_for
from enrollments.selectors.api_list import enrollment_list_page
from enrollments.services import UnknownCohorts, bulk_enroll_job_create, enrollment_bulk_update

from . import examples
from .pagination import EnrollmentCursorPagination
from .permissions import ScopedRateThrottle, courses_for_bulk_enroll
from .renderers import BulkAnswerRenderer
from .serializers import (
    VALIDATION_ERROR_SCHEMA,
    BulkEnrollAcceptedSerializer,
    BulkEnrollJobSerializer,
    BulkEnrollRequestSerializer,
    BulkEnrollResponseSerializer,
    EnrollmentQuerySerializer,
    EnrollmentSerializer,
    ErrorSerializer,
    unmangle_course_key,
)

# "Within the last N days" with N beyond a thousand years is everything.
MAX_DAYS = 365_000


def api_exception_handler(exc, context):
    """DRF's handler, plus JSON answers for the request limits Django enforces
    itself (it would answer a plain-text 400): 413 for a body above
    DATA_UPLOAD_MAX_MEMORY_SIZE, 400 for too many form fields or files. The
    rest, application errors included, is the site's API handler."""
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        return Response(
            {"detail": _("The form has too many fields. Send the identifiers in one field, separated by commas or new lines.")},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            {"detail": _("The request body is larger than the %(limit)s bytes allowed. Send fewer identifiers per call; nothing was changed.")
             % {"limit": number_format(limit, force_grouping=True)}},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    return site_api_exception_handler(exc, context)


class ApiViewMixin:
    renderer_classes: Sequence[type[BaseRenderer]] = [JSONRenderer]
    throttle_classes: Sequence[type[BaseThrottle]] = [ScopedRateThrottle]

    def get_exception_handler(self):
        return api_exception_handler


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


UNAUTHORIZED = _error("No credentials, or an unknown or revoked token.")
THROTTLED = _error("Too many requests; the Retry-After header says after how many seconds to try again.")
RETRY_AFTER = OpenApiParameter(
    "Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[429], description="Seconds to wait before trying again."
)


LIST_SCHEMA = extend_schema(
    operation_id="enrollments_list",
    summary="List enrollments",
    description=(
        "Every enrollment the caller may see, newest first: platform administrators see every course, "
        "course staff and admins the courses they are on the team of (and their own enrollments), "
        "learners their own enrollments. Filters combine. An unknown `course_id` gives an empty list. "
        "Pages are cursor based: follow `next` for older enrollments."
    ),
    tags=["enrollments"],
    parameters=[EnrollmentQuerySerializer, RETRY_AFTER],
    responses={
        200: EnrollmentSerializer(many=True),
        400: OpenApiResponse(VALIDATION_ERROR_SCHEMA, description="A malformed filter, named with its message (for example `days=-1`)."),
        401: UNAUTHORIZED,
        429: THROTTLED,
    },
    examples=examples.LIST_EXAMPLES,
)


@extend_schema_view(get=LIST_SCHEMA)
class EnrollmentListView(ApiViewMixin, ListAPIView):
    serializer_class = EnrollmentSerializer
    pagination_class = EnrollmentCursorPagination
    filter_backends = []
    throttle_scope = "enrollments_list"

    def list(self, request, *args, **kwargs):
        query = EnrollmentQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        now = timezone.now()
        days = query.validated_data.get("days")
        since = now - timedelta(days=days) if days is not None and days <= MAX_DAYS else None
        filters = {
            "user": request.user,
            "course_key": unmangle_course_key(query.validated_data.get("course_id", "")),
            "username": query.validated_data.get("username", ""),
            "since": since,
            "status": query.validated_data.get("status", ""),
            "now": now,
        }
        paginator = self.paginator
        rows = paginator.paginate(
            lambda position, reverse, limit: enrollment_list_page(**filters, after=position, backwards=reverse, limit=limit),
            request,
            position_of=lambda row: (row.created, row.id),
        )
        # The page's items as the selector wrote them, key for key what
        # EnrollmentSerializer documents: a model instance and a serializer per
        # row would cost more than the query.
        return paginator.get_paginated_response([row.item for row in rows])


class EnrollmentListSlashView(EnrollmentListView):
    """The same listing under the path with a trailing slash; documented once."""

    schema = None


class BulkEnrollView(ApiViewMixin, APIView):
    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]
    renderer_classes = [BulkAnswerRenderer]  # JSONRenderer's bytes, the results written faster
    throttle_scope = "bulk_enroll"

    @extend_schema(
        operation_id="bulk_enroll",
        summary="Bulk enroll or unenroll",
        description=(
            "Enroll or unenroll usernames and emails in one or several courses. The caller must be on the team of "
            "every course (or a platform administrator). The body is validated first (400, naming the field), then "
            "every course is checked: an unknown course key is a 404, a course the caller may not manage a 403, and "
            "in both cases nothing changes in any course. All courses then run in one transaction.\n\n"
            f"Up to `ENROLLMENT_SYNC_LIMIT` identifiers ({settings.ENROLLMENT_SYNC_LIMIT:,} by default; distinct identifiers "
            "times courses) the answer comes at once (200). Above that the call becomes a background job (202) whose "
            "`url` reports progress and, once done, the same answer. Above `ENROLLMENT_MAX_IDENTIFIERS` "
            f"({settings.ENROLLMENT_MAX_IDENTIFIERS:,}) the call is refused (400).\n\n"
            "An identifier that is neither a valid email nor a known username gets `\"invalidIdentifier\": true`. "
            "Unknown emails become allowances on enroll (`auto_enroll` decides whether activating the account enrolls them).\n\n"
            "As Open edX's bulk enroll: `courses`, `identifiers` and `cohorts` may be comma-separated strings or lists; "
            "with `cohorts`, each result's `before` and `after` carry `cohort` (the name, or null). A cohort a course does "
            "not have is a 400 naming it, and nothing changes in any course, unless `create_cohorts` is true.\n\n"
            "`dry_run`: the call runs as it would and is rolled back; the answer is the same JSON, with nothing written "
            "(no enrollment, allowance, cohort, audit entry or email). A dry run above `ENROLLMENT_SYNC_LIMIT` is a 400, "
            "never a job.\n\n"
            "Periods (enroll only, all optional): `access_from`, `access_until` (dates in the site's time zone, or ISO "
            "date-times) or `duration_days` (instead of an end). A new or re-enrolled enrollment gets the period, an active "
            "one keeps its own, and an invitation keeps it for when the person enrolls (a duration then counts from "
            "enrolling); without them each course's default applies. A call that names any of them is answered with "
            "top-level `access_from` and `access_until` (ISO strings or null); a call that names none gets the seed's shape."
        ),
        tags=["enrollments"],
        request=BulkEnrollRequestSerializer,
        parameters=[
            RETRY_AFTER,
            OpenApiParameter("Location", OpenApiTypes.URI, OpenApiParameter.HEADER, response=[202], description="The job resource."),
        ],
        responses={
            200: OpenApiResponse(BulkEnrollResponseSerializer, description="Every identifier's state before and after, per course."),
            202: OpenApiResponse(BulkEnrollAcceptedSerializer, description="Too many identifiers to answer at once: a background job."),
            400: OpenApiResponse(VALIDATION_ERROR_SCHEMA, description="A malformed body: each field in error with its message."),
            401: UNAUTHORIZED,
            403: _error("The caller may not manage one of the courses (or the CSRF token is missing); nothing was changed."),
            404: _error("A course key that does not exist; nothing was changed."),
            413: _error("The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE; nothing was changed."),
            429: THROTTLED,
        },
        examples=examples.BULK_EXAMPLES,
    )
    @method_decorator(without_gc)  # thousands of results built and answered: enrollment_site/lib/gc_pause.py
    def post(self, request):
        serializer = BulkEnrollRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        courses = courses_for_bulk_enroll(user=request.user, keys=data["courses"])
        options = {
            "courses": courses,
            "identifiers": data["identifiers"],
            "action": data["action"],
            "auto_enroll": data["auto_enroll"],
            "email_students": data["email_students"],
            "cohorts": data["cohorts"],
            "create_cohorts": data["create_cohorts"],
            "reason": data["reason"],
            "period": data["period"],
        }
        size, limit = len(data["identifiers"]) * len(courses), settings.ENROLLMENT_SYNC_LIMIT
        if data["dry_run"] and size > limit:
            # A dry run answers in the request or not at all: a job would be a
            # row written, and an answer to poll for something that did not happen.
            raise ValidationError({"dry_run": [
                _("A dry run answers for at most %(limit)s identifiers times courses; this call has %(size)s. "
                  "Split the list and try again; nothing was changed.")
                % {"limit": number_format(limit, force_grouping=True), "size": number_format(size, force_grouping=True)}
            ]})
        try:
            if size > limit:
                job = bulk_enroll_job_create(requester=request.user, **options)
                # Without a broker the job has already run in-process by now.
                job.refresh_from_db(fields=["status"])
                url = request.build_absolute_uri(reverse("api_bulk_enroll_job", kwargs={"job_id": job.public_id}))
                body = {"job_id": str(job.public_id), "status": job.status, "url": url}
                return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})
            answer = enrollment_bulk_update(actor=request.user, source=Source.API, dry_run=data["dry_run"], **options)
        except UnknownCohorts as exc:
            raise ValidationError({"cohorts": exc.messages}) from exc
        except DjangoValidationError as exc:
            raise ValidationError({"identifiers": exc.messages}) from exc
        return Response(answer)


class BulkEnrollSlashlessView(BulkEnrollView):
    """The same endpoint without the trailing slash; documented once."""

    schema = None


class BulkEnrollJobView(ApiViewMixin, APIView):
    throttle_scope = "enrollments_list"

    @extend_schema(
        operation_id="bulk_enroll_job",
        summary="Bulk enroll job",
        description=(
            "Status and progress of a bulk enroll call answered with 202 and, once it succeeded, its answer in `result` "
            "(the same JSON a 200 gives). Only the caller who made the request, or a platform administrator, may read it."
        ),
        tags=["enrollments"],
        parameters=[OpenApiParameter("job_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The job_id of the 202 answer."), RETRY_AFTER],
        responses={
            200: BulkEnrollJobSerializer,
            401: UNAUTHORIZED,
            404: _error("No such job, or not yours."),
            429: THROTTLED,
        },
        examples=examples.JOB_EXAMPLES,
    )
    def get(self, request, job_id):
        # The id is matched here rather than by a uuid converter, so that a
        # malformed one is a JSON 404 like an unknown one.
        try:
            public_id = uuid.UUID(job_id)
        except ValueError:
            raise NotFound(_("No such job.")) from None
        job = bulk_enroll_job_for(user=request.user, public_id=public_id)
        if job is None:
            raise NotFound(_("No such job."))
        return Response(BulkEnrollJobSerializer(job).data)
