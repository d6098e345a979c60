"""Emails for an enrollment with a period say until when; an invitation says what it will give."""

import pytest
from django.core import mail

from enrollments.models import Notification
from enrollments.periods import period_request
from enrollments.services import allowance_resend, enrollment_batch_update
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = "https://learn.example.org"


def send(course, identifiers, django_capture_on_commit_callbacks, **period):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        enrollment_batch_update(
            course=course, identifiers=identifiers, action="enroll", auto_enroll=True, email_students=True, actor=None,
            period=period_request(**period) if period else None,
        )
    return {m.to[0]: m for m in mail.outbox}


def html_of(message) -> str:
    return message.alternatives[0][0]


def test_the_enrolled_email_says_until_when_in_both_parts(course, django_capture_on_commit_callbacks):
    UserFactory(username="ada", email="ada@example.com")
    message = send(course, "ada", django_capture_on_commit_callbacks, access_until="2026-12-31")["ada@example.com"]
    assert "Your access: until 31 Dec 2026 23:59 (UTC)." in message.body
    assert "Your access: <strong>until 31 Dec 2026 23:59 (UTC)</strong>." in html_of(message)


def test_the_invitation_says_what_it_will_give(course, django_capture_on_commit_callbacks):
    message = send(course, "new@example.com", django_capture_on_commit_callbacks, duration_days="30")["new@example.com"]
    assert "Once you are enrolled, your access: 30 days from enrolling." in message.body
    assert "Once you are enrolled, your access: <strong>30 days from enrolling</strong>." in html_of(message)


def test_messages_of_different_periods_each_say_their_own(course, other_course, django_capture_on_commit_callbacks):
    UserFactory(username="ada", email="ada@example.com")
    UserFactory(username="bob", email="bob@example.com")
    send(course, "ada", django_capture_on_commit_callbacks, access_until="2026-12-31")
    bob = send(course, "bob", django_capture_on_commit_callbacks, access_until="2027-01-31")["bob@example.com"]
    assert "until 31 Jan 2027" in bob.body and "2026" not in bob.body.split("Your access:")[1].split("\n")[0]


def test_without_a_period_the_email_says_nothing_of_one(course, django_capture_on_commit_callbacks):
    UserFactory(username="ada", email="ada@example.com")
    message = send(course, "ada", django_capture_on_commit_callbacks)["ada@example.com"]
    assert "Your access" not in message.body and "Your access" not in html_of(message)


def test_a_resent_invitation_tells_its_period_again(course, course_staff, django_capture_on_commit_callbacks):
    send(course, "new@example.com", django_capture_on_commit_callbacks, access_until="2026-12-31")
    Notification.objects.all().delete()  # the first one is long ago
    allowance = course.allowances.get()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        allowance_resend(course=course, actor=course_staff, allowance_ids=[allowance.pk])
    assert "Once you are enrolled, your access: until 31 Dec 2026 23:59 (UTC)." in mail.outbox[0].body
