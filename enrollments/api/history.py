"""The course team's API for one person's story and for the invitations:

- ``GET /api/courses/v1/<course_key>/enrollments/<username or email>/``: the
  person's current state in the course and their history (every change, with
  the emails sent about it), as the learner's story page shows it;
- ``GET /api/courses/v1/<course_key>/allowances/``: the course's open
  invitations, newest first, in cursor pages, with ``search``.

Both are for the course's team and platform administrators (404 for an
unknown course, 403 for anyone else), through ``course_for_team_member`` as
the pages are."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from courses.models import COURSE_KEY_PATTERN
from courses.selectors import course_for_team_member
from enrollments.selectors.history import email_status_label, learner_story
from enrollments.selectors.invitations import MAX_SEARCH_LENGTH, open_invitations

from .pagination import EnrollmentCursorPagination
from .serializers import VALIDATION_ERROR_SCHEMA, ErrorSerializer
from .views import RETRY_AFTER, THROTTLED, UNAUTHORIZED, ApiViewMixin

COURSE_KEY = OpenApiParameter(
    "course_key", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=f"^{COURSE_KEY_PATTERN}$",
    description="The course's key, course-v1:ORG+NUMBER+RUN.",
)
IDENTIFIER = OpenApiParameter(
    "identifier", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=r"^[^/]{1,320}$",
    description="A username or an email address (any case).",
)
NOT_TEAM = OpenApiResponse(ErrorSerializer, description="The caller is not on the course's team.")
NO_COURSE = OpenApiResponse(ErrorSerializer, description="No course with this key.")


class EmailSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="enrolled, allowed, unenrolled or allowance_removed")
    recipient = serializers.EmailField()
    status = serializers.SerializerMethodField(help_text="queued, sent or failed")
    created = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)

    def get_status(self, note) -> str:
        return email_status_label(note.status)


class HistoryEntrySerializer(serializers.Serializer):
    created = serializers.DateTimeField(help_text="When the change (or, for an email alone, the email) was made.")
    change = serializers.SerializerMethodField(help_text="The audit entry, or null for an email no change claims (an invitation resent).")
    emails = EmailSerializer(many=True)

    def get_change(self, entry) -> dict | None:
        audit = entry["audit"]
        if audit is None:
            return None
        return {
            "identifier": audit.identifier, "actor": audit.actor.username if audit.actor else None, "source": audit.source,
            "state_before": audit.state_before, "state_after": audit.state_after, "reason": audit.reason,
            "operation_id": str(audit.operation_id) if audit.operation_id else None,
            # blank where the entry records no mode or cohort (only the learners table's actions do)
            "mode_before": audit.mode_before, "mode_after": audit.mode_after,
            "cohort_before": audit.cohort_before, "cohort_after": audit.cohort_after,
        }


class StorySerializer(serializers.Serializer):
    course_id = serializers.CharField()
    identifier = serializers.CharField(help_text="As given in the path.")
    username = serializers.CharField(allow_null=True)
    email = serializers.CharField()
    state = serializers.CharField(help_text="none, allowed, allowed_auto, enrolled or unenrolled")
    enrollment = serializers.DictField(allow_null=True, help_text="is_active, mode, source, created, updated; null if never enrolled.")
    allowance = serializers.DictField(allow_null=True, help_text="auto_enroll, created, used_at; null without an invitation.")
    history = HistoryEntrySerializer(many=True, help_text="Newest first.")
    truncated = serializers.BooleanField(help_text="True when only the latest entries are listed.")


def _story_data(course, story) -> dict:
    enrollment, allowance = story.enrollment, story.allowance
    return {
        "course_id": course.key,
        "identifier": story.who,
        "username": story.user.username if story.user is not None else None,
        "email": story.email,
        "state": story.state,
        "enrollment": None if enrollment is None else {
            "is_active": enrollment.is_active, "mode": enrollment.mode, "source": enrollment.source,
            "created": enrollment.created.isoformat(), "updated": enrollment.updated.isoformat(),
        },
        "allowance": None if allowance is None else {
            "auto_enroll": allowance.auto_enroll, "created": allowance.created.isoformat(),
            "used_at": allowance.used_at.isoformat() if allowance.used_at else None,
        },
        "history": HistoryEntrySerializer([{"created": e.when, "audit": e.audit, "emails": e.emails} for e in story.entries], many=True).data,
        "truncated": story.truncated,
    }


class LearnerStoryView(ApiViewMixin, APIView):
    throttle_scope = "enrollments_list"

    @extend_schema(
        operation_id="course_enrollment_story",
        summary="A person's state and history in a course",
        description=(
            "Anyone, by username or email, enrolled or not: the current state in the course, the enrollment and "
            "invitation rows, and every change from the audit trail (newest first) with the emails sent about it "
            "and their status. An email address without an account answers its invitation history; an unknown "
            "username answers 404."
        ),
        tags=["course roster"],
        parameters=[COURSE_KEY, IDENTIFIER, RETRY_AFTER],
        responses={
            200: StorySerializer,
            400: OpenApiResponse(VALIDATION_ERROR_SCHEMA, description="The identifier is neither a username nor an email."),
            401: UNAUTHORIZED, 403: NOT_TEAM, 404: OpenApiResponse(ErrorSerializer, description="No such course, or no account with that username."),
            429: THROTTLED,
        },
    )
    def get(self, request, course_key, identifier):
        course = course_for_team_member(request, course_key)
        if len(identifier) > 320:
            raise ValidationError({"identifier": [_("A username or email has at most 320 characters.")]})
        story = learner_story(course=course, who=identifier)
        if not story.valid:
            raise ValidationError({"identifier": [_("Not a username or a well-formed email address.")]})
        if not story.found:
            raise NotFound(_("No account with the username %(username)s.") % {"username": identifier})
        return Response(_story_data(course, story))


class AllowanceSerializer(serializers.Serializer):
    email = serializers.EmailField()
    auto_enroll = serializers.BooleanField()
    invited_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    created = serializers.DateTimeField()
    emailed_at = serializers.DateTimeField(allow_null=True, help_text="The latest invitation email, or null if none was sent.")
    email_status = serializers.SerializerMethodField(help_text="queued, sent, failed, or null")

    def get_email_status(self, allowance) -> str | None:
        return email_status_label(allowance.email_status) if allowance.email_status else None


class AllowanceQuerySerializer(serializers.Serializer):
    search = serializers.CharField(
        required=False, allow_blank=True, max_length=MAX_SEARCH_LENGTH, help_text="Only addresses containing this text (any case)."
    )


class AllowanceListView(ApiViewMixin, ListAPIView):
    serializer_class = AllowanceSerializer
    pagination_class = EnrollmentCursorPagination
    filter_backends = []
    throttle_scope = "enrollments_list"

    @extend_schema(
        operation_id="course_allowances_list",
        summary="List a course's open invitations",
        description="The course's allowances not yet used, newest first, in cursor pages (follow `next`).",
        tags=["course roster"],
        parameters=[COURSE_KEY, AllowanceQuerySerializer, RETRY_AFTER],
        responses={
            200: AllowanceSerializer(many=True),
            400: OpenApiResponse(VALIDATION_ERROR_SCHEMA, description="A malformed parameter, named with its message."),
            401: UNAUTHORIZED, 403: NOT_TEAM, 404: NO_COURSE, 429: THROTTLED,
        },
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        course = course_for_team_member(self.request, self.kwargs["course_key"])
        query = AllowanceQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return open_invitations(course=course, search=query.validated_data.get("search", ""))
