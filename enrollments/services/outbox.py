"""Outbox delivery: the emails a batch wrote to the outbox, sent after commit.

A batch writes one ``Notification`` row per email in its own transaction
(``batch.py``); the texts come from ``enrollments/notifications.py`` and the
templates under ``templates/enrollments/email/``, rendered here at send time.
Rows are claimed with SKIP LOCKED, sent in chunks over one SMTP connection,
and marked sent one by one, so a retry never sends a message twice.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import Notification
from ..notifications import MessageBuilder, RenderedMessage

NOTIFICATION_CHUNK = 200
SENDING_STALE_MINUTES = 10
PENDING_SWEEP_AFTER_SECONDS = 60


def _claim_notifications(*, operation_id, limit: int) -> list[Notification]:
    with transaction.atomic():
        # SKIP LOCKED lets several workers drain the outbox side by side
        # without two of them claiming the same message.
        qs = Notification.objects.filter(status=Notification.Status.PENDING)
        if operation_id is not None:
            qs = qs.filter(operation_id=operation_id)
        ids = list(qs.order_by("id").select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
        if not ids:
            return []
        Notification.objects.filter(pk__in=ids, status=Notification.Status.PENDING).update(
            status=Notification.Status.SENDING, claimed_at=timezone.now()
        )
        return list(Notification.objects.filter(pk__in=ids).select_related("course").order_by("id"))


def notifications_send(*, operation_id: str | uuid.UUID | None = None) -> int:
    """Deliver pending outbox rows (of one operation, or all), in chunks over
    one SMTP connection per chunk. Each row is marked sent once its message
    went out, so a retry never sends a message twice; on an error the unsent
    rest of the chunk goes back to pending and the error propagates (the task
    retries). Returns how many messages were sent."""
    from email.utils import make_msgid

    from django.core.mail import EmailMultiAlternatives, get_connection
    from django.core.mail.utils import DNS_NAME

    sent_total = 0
    while True:
        batch = _claim_notifications(operation_id=operation_id, limit=NOTIFICATION_CHUNK)
        if not batch:
            return sent_total
        sent: list[tuple[int, str]] = []
        builders: dict[int | None, MessageBuilder] = {}
        try:
            with get_connection() as connection:
                for note in batch:
                    if note.course is None and not note.body:
                        # Its course was deleted before delivery: nothing left to announce.
                        Notification.objects.filter(pk=note.pk).update(status=Notification.Status.FAILED, error="course deleted")
                        continue
                    if note.course is None:
                        # A message written out in full outlives its course: it needs no builder.
                        rendered = RenderedMessage(note.body)
                    else:
                        if note.course_id not in builders:
                            builders[note.course_id] = MessageBuilder(note.course)
                        rendered = builders[note.course_id].render(note)
                    message_id = make_msgid(domain=DNS_NAME)
                    message = EmailMultiAlternatives(
                        subject=note.subject, body=rendered.text, from_email=settings.DEFAULT_FROM_EMAIL, to=[note.recipient],
                        connection=connection, headers={"Message-ID": message_id},
                    )
                    if rendered.html is not None:
                        message.attach_alternative(rendered.html, "text/html")
                    connection.send_messages([message])
                    sent.append((note.pk, message_id))
        except Exception as exc:
            _record_sent(sent)
            unsent = [n.pk for n in batch if n.pk not in {pk for pk, _ in sent}]
            Notification.objects.filter(pk__in=unsent).update(
                status=Notification.Status.PENDING, error=str(exc)[:1000], claimed_at=None
            )
            raise
        _record_sent(sent)
        sent_total += len(sent)


def _record_sent(sent: list[tuple[int, str]]) -> None:
    if not sent:
        return
    now = timezone.now()
    rows = [Notification(pk=pk, message_id=mid, status=Notification.Status.SENT, sent_at=now) for pk, mid in sent]
    Notification.objects.bulk_update(rows, ["message_id", "status", "sent_at"])


def notifications_requeue_stale() -> int:
    """Give rows stuck in 'sending' (a worker died mid-chunk) back to the sender.
    A message that did go out before the crash may then be sent a second time:
    the one duplicate this design admits, preferred to losing it."""
    cutoff = timezone.now() - timedelta(minutes=SENDING_STALE_MINUTES)
    return Notification.objects.filter(status=Notification.Status.SENDING, claimed_at__lt=cutoff).update(
        status=Notification.Status.PENDING, claimed_at=None
    )
