"""Enrollment must succeed while the broker is down; the messages it should
have sent wait in the outbox and go out once the broker is back."""

import pytest
from django.core import mail

from enrollment_site.celery import app
from enrollments.models import Allowance, Notification
from enrollments.services import enrollment_batch_update
from enrollments.tasks import sweep_notifications
from tests.celery_worker import _reset_app_connections, celery_worker  # noqa: F401

from ..factories import CourseFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

DEAD_BROKER = "redis://127.0.0.1:6399/0"  # nothing listens there


def test_enroll_with_broker_down_then_sweep_delivers_once_it_is_back(celery_worker, settings, caplog):  # noqa: F811
    course = CourseFactory(display_name="Outage Resilience 101")

    # The web process loses its broker; the worker keeps running on the real one.
    app.conf.update(broker_url=DEAD_BROKER)
    settings.CELERY_BROKER_URL = DEAD_BROKER
    _reset_app_connections(app)
    try:
        result = enrollment_batch_update(
            course=course, identifiers="down1@example.com, down2@example.com", action="enroll",
            auto_enroll=True, email_students=True, actor=None,
        )
    finally:
        app.conf.update(broker_url=celery_worker.broker_url)
        settings.CELERY_BROKER_URL = celery_worker.broker_url
        _reset_app_connections(app)

    # The enrollment itself succeeded and its messages wait in the outbox.
    assert [r.outcome.label for r in result.results] == ["allowed: will enroll on activation"] * 2
    assert Allowance.objects.filter(course=course).count() == 2
    assert set(Notification.objects.values_list("status", flat=True)) == {Notification.Status.PENDING}
    assert "could not enqueue" in caplog.text
    assert celery_worker.emails() == [] and mail.outbox == []

    # The broker is back: the periodic sweep (run by beat every minute) delivers them.
    sweep_notifications.delay()

    def delivered():
        return Notification.objects.filter(status=Notification.Status.SENT).count() == 2

    celery_worker.wait_for(delivered, timeout=30, what="the sweep to deliver the outbox")
    emails = celery_worker.wait_for(lambda: len(celery_worker.emails()) >= 2 and celery_worker.emails(), what="the email files")
    assert sorted(e["to"] for e in emails) == ["down1@example.com", "down2@example.com"]
    assert all("Outage Resilience 101" in e["subject"] for e in emails)
