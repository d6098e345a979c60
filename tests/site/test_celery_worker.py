"""A real Celery worker consumes what the web process queues: the ping task, and
enrollment notifications delivered from the outbox."""

import pytest
from django.core import mail

from enrollment_site.celery import app, ping
from enrollments.models import Allowance, Enrollment, Notification
from enrollments.services import enrollment_batch_update
from tests.celery_worker import celery_worker  # noqa: F401

from ..factories import CourseFactory, UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TIMEOUT = 30  # seconds; the test fails, never hangs, if the worker does not answer


def test_worker_answers_ping(celery_worker):  # noqa: F811
    assert not app.conf.task_always_eager
    result = ping.delay("hello from the test")
    assert result.get(timeout=TIMEOUT) == "hello from the test"
    assert result.successful()
    assert "enrollment_site.ping" in celery_worker.log


def test_worker_delivers_enrollment_notifications_from_the_outbox(celery_worker):  # noqa: F811
    course = CourseFactory(key="course-v1:Acme+WORKER+2026", display_name="Worker Delivery 101")
    existing = UserFactory(username="existing", email="existing@example.com")

    result = enrollment_batch_update(
        course=course,
        identifiers=["someone-new@example.com", "existing"],
        action="enroll",
        auto_enroll=True,
        email_students=True,
        actor=None,
    )

    # The change itself is committed before any email goes out ...
    assert Allowance.objects.filter(course=course, email__iexact="someone-new@example.com", auto_enroll=True).exists()
    assert Enrollment.objects.filter(course=course, user=existing, is_active=True).exists()
    assert Notification.objects.filter(operation_id=result.operation_id).count() == 2
    # ... and nothing was sent in this (the web) process.
    assert mail.outbox == []

    def all_sent():
        statuses = list(Notification.objects.filter(operation_id=result.operation_id).values_list("status", flat=True))
        return len(statuses) == 2 and set(statuses) == {Notification.Status.SENT}

    celery_worker.wait_for(all_sent, timeout=TIMEOUT, what="the notifications to be sent")
    sent = list(Notification.objects.filter(operation_id=result.operation_id))
    assert all(note.sent_at and note.message_id for note in sent)

    emails = celery_worker.wait_for(lambda: len(celery_worker.emails()) >= 2 and celery_worker.emails(), what="the email files")
    by_recipient = {message["to"]: message for message in emails}
    assert set(by_recipient) == {"someone-new@example.com", "existing@example.com"}
    for message in emails:
        assert "Worker Delivery 101" in message["subject"]
    invitation = by_recipient["someone-new@example.com"]
    assert "Worker Delivery 101" in invitation["body"]
    assert "/accounts/signup/" in invitation["body"]  # people without an account are told to register
    assert "Worker Delivery 101" in invitation["html"] and "Create your account</a>" in invitation["html"]
    assert "enrollments.tasks.send_notifications" in celery_worker.log
