"""Outbox delivery: the emails a batch wrote to the outbox, sent after commit.

A batch writes one ``Notification`` row per email in its own transaction
(``batch.py``); the texts come from ``enrollments/notifications.py`` and the
templates under ``templates/enrollments/email/``, rendered here at send time.
Rows are claimed with SKIP LOCKED, sent in chunks over one SMTP connection,
and each is marked sent (committed) the moment its message went out, so a
retry never sends a message twice and a worker killed mid-chunk repeats at
most the one message that was in flight. The claim on the rest of a chunk is
renewed with every message's mark, so a slow chunk is never taken for a dead one.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
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
    one SMTP connection per chunk. Each row is marked sent, in its own
    committed UPDATE, right after its message went out: a retry never sends a
    message twice, and a worker that dies mid-chunk leaves every message it
    sent marked, so at most the one in flight is sent again. On an error (or
    an interruption such as a warm shutdown) the unsent rest of the chunk goes
    back to pending and the error propagates (the task retries); rows of a
    worker killed outright stay 'sending' until ``notifications_requeue_stale``.
    Must run outside a transaction, or the marks would commit only together.
    Returns how many messages were sent."""
    from email.utils import make_msgid

    from django.core.mail import EmailMultiAlternatives, get_connection
    from django.core.mail.utils import DNS_NAME

    sent_total = 0
    while True:
        batch = _claim_notifications(operation_id=operation_id, limit=NOTIFICATION_CHUNK)
        if not batch:
            return sent_total
        done: set[int] = set()
        ids = [n.pk for n in batch]
        builders: dict[int | None, MessageBuilder] = {}
        try:
            with get_connection() as connection:
                for note in batch:
                    if note.course is None and not note.body:
                        # Its course was deleted before delivery: nothing left to announce.
                        Notification.objects.filter(pk=note.pk).update(status=Notification.Status.FAILED, error="course deleted")
                        done.add(note.pk)
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
                    _record_sent(pk=note.pk, message_id=message_id, unsent=[pk for pk in ids if pk not in done])
                    done.add(note.pk)
                    sent_total += 1
        except BaseException as exc:
            # BaseException too: a warm shutdown or Ctrl-C gives the unsent rest
            # back now rather than after SENDING_STALE_MINUTES. The message in
            # flight goes back with it: whether it went out is unknown, and
            # sending it twice is preferred to losing it.
            unsent = [n.pk for n in batch if n.pk not in done]
            Notification.objects.filter(pk__in=unsent, status=Notification.Status.SENDING).update(
                status=Notification.Status.PENDING, error=str(exc)[:1000] or type(exc).__name__, claimed_at=None
            )
            raise


def _record_sent(*, pk: int, message_id: str, unsent: list[int]) -> None:
    # One UPDATE per message, committed at once (autocommit): email is bound by
    # the SMTP round trip, so the extra query costs little, and it is what
    # limits a crash to at most one duplicate instead of a whole chunk. The
    # same statement renews the claim on the rest of the chunk: however slow
    # the chunk as a whole (a slow SMTP server), none of its rows gets as old
    # as SENDING_STALE_MINUTES while its sender is alive, so the sweep never
    # hands them to a second worker to send again.
    now = timezone.now()
    mine = Q(pk=pk)
    Notification.objects.filter(pk__in=unsent, status=Notification.Status.SENDING).update(
        status=Case(When(mine, then=Value(Notification.Status.SENT)), default=F("status")),
        sent_at=Case(When(mine, then=Value(now)), default=F("sent_at")),
        message_id=Case(When(mine, then=Value(message_id)), default=F("message_id")),
        claimed_at=now,
    )


def notifications_requeue_stale() -> int:
    """Give rows stuck in 'sending' (a worker died mid-chunk) back to the sender:
    rows whose claim was not renewed for SENDING_STALE_MINUTES (a live sender
    renews it with every message it marks sent).
    A message that did go out before the crash may then be sent a second time:
    the one duplicate this design admits, preferred to losing it."""
    cutoff = timezone.now() - timedelta(minutes=SENDING_STALE_MINUTES)
    return Notification.objects.filter(status=Notification.Status.SENDING, claimed_at__lt=cutoff).update(
        status=Notification.Status.PENDING, claimed_at=None
    )
