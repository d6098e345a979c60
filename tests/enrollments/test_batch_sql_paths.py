"""The batch's set-based paths (issue 16): its outbox rows built by SQL from
arrays, and its accounts resolved as plain rows. Each is checked against the
path it replaces, on whichever database the suite runs (PostgreSQL takes the
SQL path, SQLite the ``bulk_insert`` one)."""

import uuid

import pytest
from django.utils import timezone

from accounts.selectors import AccountRow, users_by_identifier
from enrollment_site.lib.identifiers import parse_identifiers
from enrollments.models import Notification
from enrollments.notifications import MessageBuilder
from enrollments.services.batch import _outbox_rows, outbox_write
from enrollments.services.batch_decide import BatchRequest, Message

from ..factories import CourseFactory, UserFactory

pytestmark = pytest.mark.django_db

COMPARED = ("operation_id", "kind", "recipient", "recipient_key", "subject", "body", "name", "auto_enroll", "reason", "course_id",
            "status", "attempts", "created", "message_id", "error", "claimed_at", "sent_at")


def _request(course, reason=""):
    return BatchRequest(action="enroll", auto_enroll=True, email_students=True, course_id=course.pk, default_mode="audit",
                        source="batch", reason=reason, operation_id=uuid.uuid4(), actor_id=None, now=timezone.now())


def test_outbox_rows_written_are_the_builders_rows_in_order():
    course = CourseFactory(display_name="Line\r\nBreak <b>101</b>")
    builder, request = MessageBuilder(course), _request(course, reason="Cohort moved")
    messages = [
        Message(Notification.Kind.ENROLLED, "Ana@Bücher.example", name="Ana " + "x" * 200),
        Message(Notification.Kind.ALLOWED, "new@example.org", auto_enroll=True),
        Message(Notification.Kind.ALLOWED, "other@example.org", auto_enroll=False),
        Message(Notification.Kind.UNENROLLED, "bo@example.com", name="Bo"),
        Message(Notification.Kind.ALLOWANCE_REMOVED, "gone@example.org"),
    ]
    outbox_write(builder, messages, request)
    written = list(Notification.objects.order_by("id").values(*COMPARED))
    expected = [Notification(**row) for row in _outbox_rows(builder, messages, request)]
    assert written == [{f: getattr(n, "course_id" if f == "course_id" else f) for f in COMPARED} for n in expected]
    assert written[0]["subject"] == "You have been enrolled in Line Break <b>101</b>"
    assert written[0]["recipient_key"] == "ana@xn--bcher-kva.example"
    assert len(written[0]["name"]) == 150


def test_a_message_already_in_the_outbox_for_the_operation_is_skipped():
    course = CourseFactory()
    builder, request = MessageBuilder(course), _request(course)
    outbox_write(builder, [Message(Notification.Kind.ALLOWED, "a@example.org", auto_enroll=True)], request)
    outbox_write(builder, [Message(Notification.Kind.ALLOWED, "A@example.org", auto_enroll=True),
                           Message(Notification.Kind.ALLOWED, "b@example.org", auto_enroll=True)], request)
    assert sorted(Notification.objects.values_list("recipient", flat=True)) == ["a@example.org", "b@example.org"]


def test_accounts_as_rows_are_the_accounts_the_models_name():
    UserFactory(username="Amy", email="amy@example.com", first_name="Amy", last_name="Pond")
    UserFactory(username="amy", email="amy2@example.com", first_name="", last_name="")
    UserFactory(username="gone", email="gone@example.com", is_active=False)
    parsed = parse_identifiers("AMY amy Amy amy@EXAMPLE.com amy2@example.com gone nobody bad@")
    as_models = users_by_identifier(parsed)
    as_rows = users_by_identifier(parsed, as_rows=True)
    assert [(i.text, u and u.pk) for i, u in as_rows] == [(i.text, u and u.pk) for i, u in as_models]
    for (_, user), (_, row) in zip(as_models, as_rows, strict=True):
        if user is None:
            continue
        assert isinstance(row, AccountRow)
        assert (row.username, row.email, row.email_key, row.display_name) == (user.username, user.email, user.email_key, user.display_name)
