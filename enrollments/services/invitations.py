"""Invitations (allowances not yet used): email them again, or revoke them.

Both take a selection of allowance ids and act on those that are still open
invitations of the course: ids of other courses, and invitations used or
revoked since the page was shown, change nothing and are counted as gone.
Both lock the rows they act on (by id, so two overlapping selections queue
instead of deadlocking), write set-based (a fixed number of queries whatever
the selection's size) and send their emails through the outbox after commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.types import Actor
from courses.models import Course
from enrollment_site.lib import lookups  # noqa: F401 (registers __any_of)
from enrollment_site.lib.bulk import bulk_insert
from enrollment_site.lib.tasks import enqueue_on_commit

from ..models import Allowance, EnrollmentAudit, Notification, Source, State
from ..notifications import MessageBuilder


@dataclass
class InvitationResult:
    """What a resend or a revoke did: ``changed`` invitations emailed or
    revoked, ``too_soon`` the addresses emailed too recently to email again
    (resend only), ``gone`` how many of the ids asked for were not open
    invitations of the course (any more)."""

    operation_id: uuid.UUID
    changed: int = 0
    too_soon: list[str] = field(default_factory=list)
    gone: int = 0


def _lock_open(*, course: Course, allowance_ids: Iterable[int]) -> tuple[list[Allowance], int]:
    ids = sorted({int(pk) for pk in allowance_ids})
    if not ids:
        return [], 0
    # Locked in id order; a row used (an account activated) or deleted meanwhile
    # is re-checked against used_at once its lock is ours, and drops out.
    rows = list(
        Allowance.objects.select_for_update()
        .filter(course=course, used_at__isnull=True, pk__any_of=ids)
        .only("id", "email", "email_key", "auto_enroll", "access_from", "access_until", "duration_days")
        .order_by("id")
    )
    return rows, len(ids) - len(rows)


def _names_by_email_key(keys: set[str]) -> dict[str, str]:
    """How to greet the owners of these addresses who have an account (an
    invitation may outlive its owner's sign-up without auto enroll): their
    display name, by email key. One query."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(email_key__in=keys, is_active=True).only("email_key", "username", "first_name", "last_name")
    return {user.email_key: user.display_name for user in users.order_by("-pk")} if keys else {}


def _send_after_commit(operation_id: uuid.UUID) -> None:
    from ..tasks import send_notifications

    enqueue_on_commit(send_notifications, str(operation_id))


@transaction.atomic
def allowance_resend(*, course: Course, actor: Actor, allowance_ids: Iterable[int]) -> InvitationResult:
    """Email the selected open invitations of ``course`` again (the same
    invitation a batch sends, saying whether activation enrolls them), except
    those emailed within the last INVITATION_RESEND_MINUTES, which are listed
    in ``too_soon`` and not emailed: a limit per invitation, so that a double
    click or a bulk resend repeated sends nobody two messages. Four queries."""
    result = InvitationResult(operation_id=uuid.uuid4())
    rows, result.gone = _lock_open(course=course, allowance_ids=allowance_ids)
    if not rows:
        return result
    since = timezone.now() - timedelta(minutes=settings.INVITATION_RESEND_MINUTES)
    # Read after the locks: a concurrent resend of the same row has committed its
    # outbox row by the time we hold the lock, and is seen here.
    recent = set(
        Notification.objects.filter(
            course=course, kind=Notification.Kind.ALLOWED, recipient_key__any_of=[a.email_key for a in rows], created__gte=since
        ).values_list("recipient_key", flat=True)
    )
    builder = MessageBuilder(course)
    outbox = []
    for allowance in rows:
        if allowance.email_key in recent:
            result.too_soon.append(allowance.email)
            continue
        outbox.append({
            **builder.allowed(email=allowance.email, auto_enroll=allowance.auto_enroll, operation_id=result.operation_id),
            # The period the invitation will give, told again.
            "access_from": allowance.access_from, "access_until": allowance.access_until, "duration_days": allowance.duration_days,
        })
    if outbox:
        bulk_insert(Notification, outbox, ignore_conflicts=True)
        _send_after_commit(result.operation_id)
    result.changed = len(outbox)
    return result


@transaction.atomic
def allowance_revoke(
    *, course: Course, actor: Actor, allowance_ids: Iterable[int], reason: str = "", email_students: bool = False
) -> InvitationResult:
    """Revoke the selected open invitations of ``course``: delete the
    allowances, audit each (state before → not enrolled, with ``reason``,
    all under one operation id) and, with ``email_students``, tell each
    address its invitation was withdrawn (greeting an address's account
    holder by name). Four queries, six with emails."""
    result = InvitationResult(operation_id=uuid.uuid4())
    rows, result.gone = _lock_open(course=course, allowance_ids=allowance_ids)
    if not rows:
        return result
    now = timezone.now()
    actor_id = actor.pk if actor is not None and getattr(actor, "is_authenticated", False) else None
    Allowance.objects.filter(pk__any_of=[a.pk for a in rows]).delete()
    bulk_insert(EnrollmentAudit, [
        {
            "created": now, "actor_id": actor_id, "course_id": course.pk, "user_id": None, "identifier": a.email,
            "state_before": State.ALLOWED_AUTO if a.auto_enroll else State.ALLOWED, "state_after": State.NONE,
            "source": Source.ROSTER, "reason": reason, "operation_id": result.operation_id,
        }
        for a in rows
    ])
    if email_students:
        builder = MessageBuilder(course)
        names = _names_by_email_key({a.email_key for a in rows})
        bulk_insert(
            Notification,
            [builder.allowance_removed(email=a.email, operation_id=result.operation_id, name=names.get(a.email_key, ""), reason=reason)
             for a in rows],
            ignore_conflicts=True,
        )
        _send_after_commit(result.operation_id)
    result.changed = len(rows)
    return result
