"""What the enrollment emails say: whom they greet, the course, the reason, the
HTML part with its button, absolute links and the sender."""

import re

import pytest
from django.core import mail

from enrollments.services import enrollment_batch_update, notifications_send
from tests.factories import AllowanceFactory, CourseFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = "https://learn.example.org"
    settings.SITE_NAME = "Acme Learning"
    settings.DEFAULT_FROM_EMAIL = "Acme Learning <courses@acme.example>"


@pytest.fixture
def learner6(db):
    return UserFactory(username="learner6", email="learner6@example.com", first_name="Learner", last_name="6")


def send(course, identifiers, *, action="enroll", reason="", auto_enroll=True, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        enrollment_batch_update(
            course=course, identifiers=identifiers, action=action, auto_enroll=auto_enroll, email_students=True, actor=None, reason=reason,
        )
    return {m.to[0]: m for m in mail.outbox}


def html_of(message) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


def test_enroll_and_unenroll_greet_the_person_by_full_name(course, learner6, django_capture_on_commit_callbacks):
    enrolled = send(course, "learner6", django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)["learner6@example.com"]
    assert enrolled.body.startswith("Dear Learner 6,\n")
    assert "<p style=\"margin:0 0 16px;\">Dear Learner 6,</p>" in html_of(enrolled)

    unenrolled = send(course, "learner6", action="unenroll", django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    message = unenrolled["learner6@example.com"]
    assert "unenrolled" in message.subject
    assert message.body.startswith("Dear Learner 6,\n")
    assert "Dear learner" not in message.body and "learner6," not in message.body
    assert "Dear Learner 6," in html_of(message)


def test_without_a_full_name_the_greeting_uses_the_username(course, django_capture_on_commit_callbacks):
    UserFactory(username="kim", email="kim@example.com", first_name="", last_name="")
    for action in ("enroll", "unenroll"):
        message = send(course, "kim@example.com", action=action, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
        assert message["kim@example.com"].body.startswith("Dear kim,\n"), action


def test_someone_without_an_account_is_greeted_without_a_name(course, django_capture_on_commit_callbacks):
    invite = send(course, "new.one@example.com", django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)["new.one@example.com"]
    assert invite.body.startswith("Hello,\n")
    AllowanceFactory(course=course, email="gone@example.com")
    withdrawn = send(course, "gone@example.com", action="unenroll", django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    assert withdrawn["gone@example.com"].body.startswith("Hello,\n")


@pytest.mark.parametrize("action", ["enroll", "unenroll"])
def test_the_reason_is_quoted_when_the_team_gave_one(course, learner6, action, django_capture_on_commit_callbacks):
    if action == "unenroll":
        EnrollmentFactory(course=course, user=learner6)
    messages = send(
        course, "learner6 invitee@example.com", action=action, reason="Spring intake <2026>",
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    for message in messages.values():
        assert "Reason given by the course team: Spring intake <2026>" in message.body
        assert "<strong>Reason given by the course team:</strong> Spring intake &lt;2026&gt;" in html_of(message)


def test_no_reason_line_without_a_reason(course, learner6, django_capture_on_commit_callbacks):
    messages = send(course, "learner6 invitee@example.com", django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    assert len(messages) == 2
    for message in messages.values():
        assert "Reason" not in message.body and "Reason" not in html_of(message)


def test_html_part_names_the_course_and_links_to_it_from_site_url(learner6, django_capture_on_commit_callbacks):
    course = CourseFactory(key="course-v1:Acme+SAFE+2026", display_name="Safety <first>")
    course_url = "https://learn.example.org/courses/course-v1:Acme+SAFE+2026/"
    message = send(course, "learner6", django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)["learner6@example.com"]
    html = html_of(message)
    assert "<strong>Safety &lt;first&gt;</strong>" in html and "<first>" not in html
    button = re.search(r'<a href="([^"]+)"[^>]*>Open the course</a>', html)
    assert button and button.group(1) == course_url
    assert "Safety <first>" in message.body and f"Open the course: {course_url}" in message.body
    # Every link is absolute, on SITE_URL.
    assert all(href.startswith("https://learn.example.org/") for href in re.findall(r'href="([^"]+)"', html))


def test_invitation_button_is_the_sign_up_page(course, django_capture_on_commit_callbacks):
    invite = send(course, "new.one@example.com", django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)["new.one@example.com"]
    html = html_of(invite)
    assert re.search(r'<a href="https://learn.example.org/accounts/signup/"[^>]*>Create your account</a>', html)
    assert "https://learn.example.org/courses/course-v1:Acme+ENR101+2026/" in html
    assert "new.one@example.com" in html


def test_a_name_with_markup_is_escaped_in_the_html_part(course, django_capture_on_commit_callbacks):
    UserFactory(username="eve", email="eve@example.com", first_name="<b>Eve</b>", last_name="&co")
    message = send(course, "eve", django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)["eve@example.com"]
    assert "Dear &lt;b&gt;Eve&lt;/b&gt; &amp;co," in html_of(message)
    assert message.body.startswith("Dear <b>Eve</b> &co,\n")


def test_sender_is_default_from_email(course, learner6, django_capture_on_commit_callbacks):
    message = send(course, "learner6", django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)["learner6@example.com"]
    assert message.from_email == "Acme Learning <courses@acme.example>"
    assert message.message()["From"] == "Acme Learning <courses@acme.example>"
    assert "Acme Learning" in message.body


def test_a_retry_after_everything_was_sent_sends_nothing_more(course, learner6, django_capture_on_commit_callbacks):
    send(course, "learner6", django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    assert notifications_send() == 0 and len(mail.outbox) == 1
