"""A chunk of emails slower than the outbox's 'sending' threshold (a slow SMTP
server) is never handed to a second worker: its sender renews the claim
before every message, so the sweep that runs meanwhile finds nothing stale."""

from datetime import timedelta

import pytest
import time_machine
from django.core.mail.backends.locmem import EmailBackend
from django.utils import timezone

from enrollments.models import Notification
from enrollments.services import enrollment_batch_update, notifications_send
from enrollments.services.outbox import SENDING_STALE_MINUTES, notifications_requeue_stale

from ..factories import CourseFactory

pytestmark = pytest.mark.django_db

# Set per test: the clock the slow server moves, and what the sweep found on the way.
CLOCK: dict = {}


class SlowBackend(EmailBackend):
    """Each message takes six minutes; the outbox sweep of another worker runs while it goes out."""

    def send_messages(self, messages):
        CLOCK["traveller"].shift(timedelta(minutes=6))
        CLOCK["requeued"].append(notifications_requeue_stale())
        return super().send_messages(messages)


def test_a_slow_chunk_keeps_its_claim_and_no_message_goes_out_twice(settings, mailoutbox):
    assert SENDING_STALE_MINUTES < 3 * 6  # the chunk below takes longer than the threshold
    settings.EMAIL_BACKEND = "tests.enrollments.test_outbox_claim.SlowBackend"
    course = CourseFactory()
    emails = [f"slow{i}@example.org" for i in range(4)]
    enrollment_batch_update(course=course, identifiers=emails, action="enroll", auto_enroll=True, email_students=True, actor=None)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        CLOCK.update(traveller=traveller, requeued=[])
        assert notifications_send() == 4
    # 24 minutes for the chunk, and the sweep took nothing from it.
    assert CLOCK["requeued"] == [0, 0, 0, 0]
    assert sorted(m.to[0] for m in mailoutbox) == emails
    assert set(Notification.objects.values_list("status", flat=True)) == {Notification.Status.SENT}
