"""Enrolling known accounts in one statement (PostgreSQL): the write of a batch
whose people are already decided.

The organisation's plans (rules, assignments, unit changes: see
``organisations/services/plans.py``) decide who to enroll from account ids,
not from typed identifiers, so nothing needs resolving or deciding per
person: ``enrollment_accounts_enroll`` locks those accounts' enrollments,
upserts them and, from what the upsert RETURNED, writes the audit entries and
the outbox rows, all in one ``INSERT … SELECT`` over the ids' array. The rows
are those ``enrollment_batch_update`` writes for the same people named by
``accounts.selectors.identifier_for``: same values, same states before, same
messages, and a row a concurrent transaction changed first is left to it
(neither audited nor mailed here). Elsewhere (SQLite) callers go through
``enrollment_batch_update``.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from accounts.types import Actor
from courses.models import Course
from enrollment_site.lib.bulk import array_cursor
from enrollment_site.lib.tasks import enqueue_on_commit

from ..models import Notification, Source, State
from ..notifications import MessageBuilder
from ..periods import Period, PeriodRequest, period_for
from .locks import course_write_lock

# The person's name as ``User.display_name`` gives it (full name, else the
# username), and the identifier ``identifier_for`` names them by.
_NAME = r"coalesce(nullif(btrim(a.first_name || ' ' || a.last_name, E' \t\n\r\f\v'), ''), a.username)"
_IDENTIFIER = "CASE WHEN strpos(a.username, '@') > 0 THEN a.email ELSE a.username END"

_ENROLL = f"""
    WITH people AS (
        SELECT a.id, a.username, a.email, a.email_key, {_NAME} AS name, coalesce(t.identifier, {_IDENTIFIER}) AS identifier, t.n
        FROM unnest(%(ids)s::bigint[], %(identifiers)s::text[]) WITH ORDINALITY AS t(id, identifier, n)
        JOIN accounts_user a ON a.id = t.id AND a.is_active
    ),
    locked AS (
        SELECT e.user_id, e.is_active, e.access_from, e.access_until FROM enrollments_enrollment e
        WHERE e.course_id = %(course_id)s AND e.user_id = ANY(%(ids)s::bigint[]) ORDER BY e.user_id FOR UPDATE
    ),
    -- An invitation for the person's address is their state before when they had no enrollment.
    invited AS (
        SELECT i.email_key, i.auto_enroll FROM enrollments_allowance i
        WHERE i.course_id = %(course_id)s AND i.email_key IN (SELECT email_key FROM people) ORDER BY i.email_key FOR UPDATE
    ),
    written AS (
        INSERT INTO enrollments_enrollment (user_id, course_id, is_active, mode, source, created, updated, access_from, access_until)
        SELECT p.id, %(course_id)s, true, %(mode)s, %(source)s, %(now)s, %(now)s, %(access_from)s, %(access_until)s
        FROM people p LEFT JOIN locked l ON l.user_id = p.id
        WHERE l.is_active IS NOT TRUE
        ORDER BY p.id
        ON CONFLICT (user_id, course_id) DO UPDATE
            SET is_active = excluded.is_active, updated = excluded.updated,
                access_from = excluded.access_from, access_until = excluded.access_until
            WHERE enrollments_enrollment.is_active IS DISTINCT FROM excluded.is_active
        RETURNING user_id, (xmax = 0) AS inserted
    ),
    audited AS (
        INSERT INTO enrollments_enrollmentaudit (
            created, actor_id, course_id, user_id, identifier, state_before, state_after, source, reason, operation_id,
            mode_before, mode_after, cohort_before, cohort_after,
            access_from_before, access_until_before, access_from_after, access_until_after
        )
        SELECT %(now)s, %(actor_id)s, %(course_id)s, p.id, p.identifier,
               CASE WHEN NOT w.inserted THEN '{State.UNENROLLED}' WHEN i.auto_enroll THEN '{State.ALLOWED_AUTO}'
                    WHEN i.email_key IS NOT NULL THEN '{State.ALLOWED}' ELSE '{State.NONE}' END,
               '{State.ENROLLED}', %(source)s, %(reason)s,
               %(operation_id)s, '', '', '', '', l.access_from, l.access_until, %(access_from)s, %(access_until)s
        FROM written w JOIN people p ON p.id = w.user_id LEFT JOIN locked l ON l.user_id = w.user_id
        LEFT JOIN invited i ON i.email_key = p.email_key
        ORDER BY p.n
    ),
    mailed AS (
        INSERT INTO enrollments_notification (operation_id, kind, recipient, recipient_key, subject, body, name, auto_enroll, reason,
                                              course_id, status, attempts, created, message_id, error, access_from, access_until)
        SELECT %(operation_id)s, '{Notification.Kind.ENROLLED}', p.email, p.email_key, %(subject)s, '', left(p.name, 150), false, %(reason)s,
               %(course_id)s, %(status)s, 0, %(now)s, '', '', %(access_from)s, %(access_until)s
        FROM written w JOIN people p ON p.id = w.user_id
        WHERE %(email_students)s
        ORDER BY p.n
        ON CONFLICT DO NOTHING
    )
    -- after written --
    SELECT user_id, inserted FROM written
"""  # noqa: S608 (the only interpolations are constants)


@dataclass(frozen=True)
class AfterWrite:
    """More writes a caller adds to ``enrollment_accounts_enroll``'s one
    statement, made from what it wrote: ``sql`` is further common table
    expressions (each ``, name AS (…)``, names not starting ``people``,
    ``locked``, ``invited``, ``written``, ``audited`` or ``mailed``) that may
    read ``written(user_id, inserted)``, the enrollments this call created
    (``inserted``) or reactivated. ``params`` are their own named
    parameters, prefixed ``after_``; the statement's ``%(course_id)s`` and
    ``%(now)s`` may be used too. A layer above enrollments (the organisations' origins)
    writes its own table in the same statement this way, without a second
    pass over the same people."""

    sql: str
    params: dict = field(default_factory=dict)


@functools.cache
def _enroll_statement(after: str) -> str:
    return _ENROLL.replace("    -- after written --\n", after)


@transaction.atomic
def enrollment_accounts_enroll(
    *,
    course: Course,
    user_ids: list[int],
    actor: Actor,
    email_students: bool,
    reason: str,
    operation_id: uuid.UUID,
    source: str = Source.BATCH,
    period: PeriodRequest | None = None,
    identifiers: list[str] | None = None,
    after: AfterWrite | None = None,
) -> dict[int, bool]:
    """Enroll the active accounts ``user_ids`` in ``course`` (PostgreSQL only):
    new enrollments with the course's default mode, former ones reactivated
    keeping theirs, either way with ``period`` (else the course's default,
    ``periods.period_for``); an active enrollment is left as it is, and so is
    an inactive account. Every change is audited under ``operation_id`` and,
    with ``email_students``, mailed from the outbox after commit, exactly as
    ``enrollment_batch_update`` would for the same people named by
    ``identifiers`` (one per id; by default ``identifier_for`` each account).
    ``after`` adds a caller's writes from what this one wrote (``AfterWrite``).

    Returns the accounts this call changed, user id → True when it created
    the enrollment, False when it reactivated one. Two queries (the course's
    write lock and one statement) whatever the number of people."""
    actor = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    now = timezone.now()
    given: Period = period_for(course, period or PeriodRequest(), now=now)
    # One entry per account (the first identifier naming it), as a batch handles a person named twice once.
    named: dict[int, str | None] = {}
    given_names: list[str | None] = list(identifiers) if identifiers is not None else [None] * len(user_ids)
    for user_id, identifier in zip(user_ids, given_names, strict=True):
        named.setdefault(user_id, identifier)
    if after is not None and not all(name.startswith("after_") for name in after.params):
        raise ValueError("AfterWrite parameters are named after_…")
    course_write_lock([course.pk])
    with array_cursor() as cursor:
        cursor.execute(_enroll_statement(after.sql if after is not None else ""), {
            **(after.params if after is not None else {}),
            "ids": list(named), "identifiers": list(named.values()), "course_id": course.pk, "mode": course.default_mode,
            "source": source, "reason": reason, "operation_id": operation_id, "actor_id": actor.pk if actor is not None else None,
            "now": now, "access_from": given.access_from, "access_until": given.access_until, "email_students": email_students,
            "subject": MessageBuilder(course).subject(Notification.Kind.ENROLLED), "status": Notification.Status.PENDING,
        })
        changed = dict(cursor.fetchall())
    if email_students and changed:
        from ..tasks import send_notifications

        enqueue_on_commit(send_notifications, str(operation_id))
    return changed


_UNENROLL = f"""
    WITH people AS (
        SELECT a.id, a.email, a.email_key, {_NAME} AS name, coalesce(t.identifier, {_IDENTIFIER}) AS identifier, t.n
        FROM unnest(%(ids)s::bigint[], %(identifiers)s::text[]) WITH ORDINALITY AS t(id, identifier, n)
        JOIN accounts_user a ON a.id = t.id AND a.is_active
    ),
    locked AS (
        SELECT e.id, e.user_id, e.is_active, e.access_from, e.access_until FROM enrollments_enrollment e
        WHERE e.course_id = %(course_id)s AND e.user_id = ANY(%(ids)s::bigint[]) ORDER BY e.user_id FOR UPDATE
    ),
    invited AS (
        SELECT i.id, i.email_key, i.auto_enroll FROM enrollments_allowance i
        WHERE i.course_id = %(course_id)s AND i.email_key IN (SELECT email_key FROM people) ORDER BY i.email_key FOR UPDATE
    ),
    ended AS (
        UPDATE enrollments_enrollment e SET is_active = false, updated = %(now)s FROM locked l WHERE e.id = l.id AND l.is_active
    ),
    withdrawn AS (
        DELETE FROM enrollments_allowance i USING invited v WHERE i.id = v.id
    ),
    -- An active enrollment is ended; an invitation for the person's address goes either way.
    changed AS (
        SELECT p.id, p.email, p.email_key, p.name, p.identifier, p.n, l.user_id IS NOT NULL AS enrolled_before,
               coalesce(l.is_active, false) AS active_before, v.auto_enroll,
               -- The period an enrollment ended had (and keeps): batch_decide.ended_period.
               CASE WHEN l.is_active THEN l.access_from END AS access_from,
               CASE WHEN l.is_active THEN l.access_until END AS access_until
        FROM people p LEFT JOIN locked l ON l.user_id = p.id LEFT JOIN invited v ON v.email_key = p.email_key
        WHERE l.is_active OR v.email_key IS NOT NULL
    ),
    audited AS (
        INSERT INTO enrollments_enrollmentaudit (
            created, actor_id, course_id, user_id, identifier, state_before, state_after, source, reason, operation_id,
            mode_before, mode_after, cohort_before, cohort_after,
            access_from_before, access_until_before, access_from_after, access_until_after
        )
        SELECT %(now)s, %(actor_id)s, %(course_id)s, c.id, c.identifier,
               CASE WHEN c.active_before THEN '{State.ENROLLED}' WHEN c.enrolled_before THEN '{State.UNENROLLED}'
                    WHEN c.auto_enroll THEN '{State.ALLOWED_AUTO}' ELSE '{State.ALLOWED}' END,
               CASE WHEN c.enrolled_before THEN '{State.UNENROLLED}' ELSE '{State.NONE}' END, %(source)s, %(reason)s,
               %(operation_id)s, '', '', '', '', c.access_from, c.access_until, c.access_from, c.access_until
        FROM changed c ORDER BY c.n
    ),
    mailed AS (
        INSERT INTO enrollments_notification (operation_id, kind, recipient, recipient_key, subject, body, name, auto_enroll, reason,
                                              course_id, status, attempts, created, message_id, error)
        SELECT %(operation_id)s,
               CASE WHEN c.active_before THEN '{Notification.Kind.UNENROLLED}' ELSE '{Notification.Kind.ALLOWANCE_REMOVED}' END,
               c.email, c.email_key, CASE WHEN c.active_before THEN %(subject_unenrolled)s ELSE %(subject_withdrawn)s END, '',
               left(c.name, 150), false, %(reason)s, %(course_id)s, %(status)s, 0, %(now)s, '', ''
        FROM changed c
        WHERE %(email_students)s
        ORDER BY c.n
        ON CONFLICT DO NOTHING
    )
    SELECT id, active_before FROM changed
"""  # noqa: S608 (the only interpolations are constants)


@transaction.atomic
def enrollment_accounts_unenroll(
    *,
    course: Course,
    user_ids: list[int],
    actor: Actor,
    email_students: bool,
    reason: str,
    operation_id: uuid.UUID,
    source: str = Source.BATCH,
) -> dict[int, bool]:
    """Unenroll the active accounts ``user_ids`` from ``course`` (PostgreSQL
    only): an active enrollment is ended (the row is kept) and an invitation
    for the person's address removed, audited under ``operation_id`` (an
    ended enrollment's row recording its period, as ``ended_period``) and,
    with ``email_students``, mailed after commit, exactly as
    ``enrollment_batch_update`` unenrolls the same people named by
    ``identifier_for``.

    Returns the accounts this call changed, user id → True when it ended
    their enrollment, False when it only removed their invitation. Two
    queries whatever the number of people."""
    actor = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    builder = MessageBuilder(course)
    ids = list(dict.fromkeys(user_ids))
    course_write_lock([course.pk])
    with array_cursor() as cursor:
        cursor.execute(_UNENROLL, {
            "ids": ids, "identifiers": [None] * len(ids), "course_id": course.pk, "source": source, "reason": reason,
            "operation_id": operation_id, "actor_id": actor.pk if actor is not None else None, "now": timezone.now(),
            "email_students": email_students, "status": Notification.Status.PENDING,
            "subject_unenrolled": builder.subject(Notification.Kind.UNENROLLED),
            "subject_withdrawn": builder.subject(Notification.Kind.ALLOWANCE_REMOVED),
        })
        changed = dict(cursor.fetchall())
    if email_students and changed:
        from ..tasks import send_notifications

        enqueue_on_commit(send_notifications, str(operation_id))
    return changed


_INVITE = f"""
    WITH asked AS (
        SELECT DISTINCT ON (t.email_key) t.email, t.email_key, t.n
        FROM unnest(%(emails)s::text[], %(keys)s::text[]) WITH ORDINALITY AS t(email, email_key, n) ORDER BY t.email_key, t.n
    ),
    locked AS (
        SELECT i.email_key, i.auto_enroll FROM enrollments_allowance i
        WHERE i.course_id = %(course_id)s AND i.email_key = ANY(%(keys)s) ORDER BY i.email_key FOR UPDATE
    ),
    written AS (
        INSERT INTO enrollments_allowance (course_id, email, email_key, auto_enroll, created_by_id, created, used_at,
                                           access_from, access_until, duration_days)
        SELECT %(course_id)s, a.email, a.email_key, %(auto_enroll)s, %(actor_id)s, %(now)s, NULL,
               %(access_from)s, %(access_until)s, %(duration_days)s
        FROM asked a LEFT JOIN locked l ON l.email_key = a.email_key
        WHERE l.auto_enroll IS DISTINCT FROM %(auto_enroll)s
        ORDER BY a.email_key
        ON CONFLICT (course_id, email_key) DO UPDATE
            SET auto_enroll = excluded.auto_enroll, created_by_id = excluded.created_by_id, access_from = excluded.access_from,
                access_until = excluded.access_until, duration_days = excluded.duration_days
            WHERE enrollments_allowance.auto_enroll IS DISTINCT FROM excluded.auto_enroll
        RETURNING email_key, (xmax = 0) AS inserted
    ),
    audited AS (
        INSERT INTO enrollments_enrollmentaudit (
            created, actor_id, course_id, user_id, identifier, state_before, state_after, source, reason, operation_id,
            mode_before, mode_after, cohort_before, cohort_after, access_from_after, access_until_after
        )
        -- Changed, an invitation held the other auto_enroll before.
        SELECT %(now)s, %(actor_id)s, %(course_id)s, NULL, a.email,
               CASE WHEN w.inserted THEN '{State.NONE}' WHEN %(auto_enroll)s THEN '{State.ALLOWED}' ELSE '{State.ALLOWED_AUTO}' END,
               CASE WHEN %(auto_enroll)s THEN '{State.ALLOWED_AUTO}' ELSE '{State.ALLOWED}' END, %(source)s, %(reason)s,
               %(operation_id)s, '', '', '', '', %(access_from)s, %(access_until)s
        FROM written w JOIN asked a ON a.email_key = w.email_key
        ORDER BY a.n
    ),
    mailed AS (
        INSERT INTO enrollments_notification (operation_id, kind, recipient, recipient_key, subject, body, name, auto_enroll, reason,
                                              course_id, status, attempts, created, message_id, error, access_from, access_until,
                                              duration_days)
        SELECT %(operation_id)s, '{Notification.Kind.ALLOWED}', a.email, a.email_key, %(subject)s, '', '', %(auto_enroll)s, %(reason)s,
               %(course_id)s, %(status)s, 0, %(now)s, '', '', %(access_from)s, %(access_until)s, %(duration_days)s
        FROM written w JOIN asked a ON a.email_key = w.email_key
        WHERE %(email_students)s
        ORDER BY a.n
        ON CONFLICT DO NOTHING
    )
    SELECT email_key, inserted FROM written
"""  # noqa: S608 (the only interpolations are constants)


@transaction.atomic
def enrollment_emails_invite(
    *,
    course: Course,
    emails: list[str],
    keys: list[str],
    auto_enroll: bool,
    actor: Actor,
    email_students: bool,
    reason: str,
    operation_id: uuid.UUID,
    source: str = Source.BATCH,
    period: PeriodRequest | None = None,
) -> dict[str, bool]:
    """Invite the addresses ``emails`` (with their ``email_key`` in ``keys``,
    and no active account: the caller has looked) to ``course`` (PostgreSQL
    only), recording ``period`` as asked: an invitation with the same
    ``auto_enroll`` is left as it is, one with the other is changed. Audited
    and mailed as ``enrollment_batch_update`` does for unknown emails.

    Returns the invitations this call changed, email key → True when it
    created one, False when it changed one. Two queries whatever the number
    of addresses."""
    actor = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    asked = period or PeriodRequest()
    now = timezone.now()
    course_write_lock([course.pk])
    with array_cursor() as cursor:
        cursor.execute(_INVITE, {
            "emails": emails, "keys": keys, "course_id": course.pk, "auto_enroll": auto_enroll, "source": source, "reason": reason,
            "operation_id": operation_id, "actor_id": actor.pk if actor is not None else None, "now": now,
            "access_from": asked.access_from, "access_until": asked.access_until, "duration_days": asked.duration_days,
            "email_students": email_students, "subject": MessageBuilder(course).subject(Notification.Kind.ALLOWED),
            "status": Notification.Status.PENDING,
        })
        changed = dict(cursor.fetchall())
    if email_students and changed:
        from ..tasks import send_notifications

        enqueue_on_commit(send_notifications, str(operation_id))
    return changed
