"""Outbox delivery: the emails a batch wrote to the outbox, sent after commit.

A batch writes one ``Notification`` row per email in its own transaction
(``batch.py``); the texts come from ``enrollments/notifications.py`` and the
templates under ``templates/enrollments/email/``, rendered here at send time
(once per course, kind, reason and language, then filled per recipient), each in
its recipient's language and time zone (``notifications.recipient_locales``).
Rows are claimed in chunks with SKIP LOCKED and sent over ``EMAIL_CONNECTIONS``
SMTP connections at once (one with a backend that cannot hold a message back
at its end), each marked sent (committed) the moment the server accepted its
message, one message at a time across the connections, so a retry never sends
a message twice and a worker killed mid-delivery repeats at most the one
message that was in flight. The claim on the rest is renewed with a message's
mark once it is a minute old, so a slow delivery is never taken for a dead one.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.message import sanitize_address
from django.db import DatabaseError, connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from courses.models import Course
from enrollment_site.lib.mail import RateLimiter

from ..models import Notification
from ..notifications import Locale, MessageBuilder, in_locale, recipient_locales

NOTIFICATION_CHUNK = 200
# A held row's claim is renewed (by the next mark) once it is this old; far below SENDING_STALE_MINUTES.
CLAIM_RENEW_SECONDS = 60
SENDING_STALE_MINUTES = 10
PENDING_SWEEP_AFTER_SECONDS = 60


def _claim_notifications(*, operation_id, limit: int, after: int = 0, courses: dict | None = None) -> list[Notification]:
    """Up to ``limit`` pending rows (of one operation, or all) with ids above
    ``after``, now 'sending' and claimed by the caller, in id order, each with
    its course (from ``courses``, a cache by id the caller keeps between claims)."""
    # SKIP LOCKED lets several workers drain the outbox side by side without
    # two of them claiming the same message. ``after`` (the last id this
    # delivery claimed) keeps each claim from walking the primary key past
    # every row the delivery already sent: 40 ms a claim when 60,000 of
    # 100,000 were sent. A row given back below it meanwhile is the next
    # delivery's, or the sweep's.
    pending = Notification.objects.filter(status=Notification.Status.PENDING, pk__gt=after)
    if operation_id is not None:
        pending = pending.filter(operation_id=operation_id)
    now = timezone.now()
    if connection.vendor == "postgresql":
        # One statement in autocommit (the claim, the lock and the update),
        # not a transaction of three: the rest of delivery waits while it runs.
        picked, params = pending.order_by("id").values("id")[:limit].query.sql_with_params()
        with connection.cursor() as cursor:
            claim = f"UPDATE enrollments_notification SET status = %s, claimed_at = %s WHERE id IN ({picked} FOR UPDATE SKIP LOCKED) RETURNING id"  # noqa: S608 (SQL compiled by Django, values as parameters)
            cursor.execute(claim, [Notification.Status.SENDING, now, *params])
            ids = [row[0] for row in cursor.fetchall()]
    else:
        with transaction.atomic():
            ids = list(pending.order_by("id").select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
            Notification.objects.filter(pk__in=ids, status=Notification.Status.PENDING).update(
                status=Notification.Status.SENDING, claimed_at=now
            )
    if not ids:
        return []
    notes = list(Notification.objects.filter(pk__in=ids).order_by("id"))
    courses = {} if courses is None else courses
    missing = {n.course_id for n in notes if n.course_id is not None} - courses.keys()
    if missing:
        courses.update(Course.objects.in_bulk(missing))
    for note in notes:
        if note.course_id is not None:
            # A course deleted since (not in bulk's answer) is announced as one deleted before delivery.
            note.course = courses.get(note.course_id)
    return notes


def notifications_send(*, operation_id: str | uuid.UUID | None = None) -> int:
    """Deliver pending outbox rows (of one operation, or all), claimed in
    chunks. With an SMTP backend that can hold a message back at its end
    (``enrollment_site.lib.mail.SMTPEmailBackend``) messages go out over
    ``EMAIL_CONNECTIONS`` connections at once, each kept open for the whole
    delivery; with any other backend, over one. At most
    ``EMAIL_RATE_PER_SECOND`` messages start per second when it is set.

    Each row is marked sent, in its own autocommitted UPDATE written to the
    database as soon as the server accepted its message; the parallel
    connections transfer their messages side by side but end them one at a
    time (end of data, the server's yes, the mark written; the mark's reply
    is read while the next message ends), so a process that dies leaves at
    most one message accepted and not marked: a retry never sends a message
    twice, and a crash repeats at most one (see ``_Marks`` for a mark
    written and not yet confirmed). A database error on a mark gives that
    message back too. On an error (or an interruption such as a
    warm shutdown) the unsent rows go back to pending and the error
    propagates (the task retries); rows of a worker killed outright stay
    'sending' until ``notifications_requeue_stale``. Must run outside a
    transaction, or the marks would commit only together.
    Returns how many messages were sent."""
    from django.core.mail import get_connection

    first = get_connection()
    staged = hasattr(first, "stage_bytes")
    width = max(1, settings.EMAIL_CONNECTIONS) if staged else 1
    backends = [first] + [get_connection() for _ in range(width - 1)]
    return _Delivery(operation_id=operation_id, backends=backends, staged=staged).run()


class _Delivery:
    """One run of ``notifications_send``. Everything that touches the database
    happens in the calling thread (claims, marks, giving back); the sender
    threads only talk SMTP, one connection each."""

    def __init__(self, *, operation_id, backends: list, staged: bool):
        from django.core.mail.utils import DNS_NAME

        self.operation_id = operation_id
        self.staged = staged
        self.domain = DNS_NAME.get_fqdn()
        self.ready: queue.Queue = queue.Queue()
        self.senders = [(_ThreadSender if staged else _InlineSender)(backend, self.ready) for backend in backends]
        self.queue: deque[Notification] = deque()
        # Claimed and not yet marked: given back on an error, their claim renewed as messages are marked.
        self.held: set[int] = set()
        self.claimed_up_to = 0
        self.renewed_at = timezone.now()
        self.builders: dict[int, MessageBuilder] = {}
        self.marks = _Marks()
        self.courses: dict[int, Course] = {}
        # Each claimed message's language and time zone, found per claim (one query), dropped once it is built.
        self.locales: dict[int, Locale] = {}
        # The locale messages are being built in (``in_locale``), kept from one message to the next.
        self.locale: Locale | None = None
        self.locale_held = contextlib.ExitStack()
        rate = settings.EMAIL_RATE_PER_SECOND
        self.limiter = RateLimiter(rate) if rate else None

    def run(self) -> int:
        sent_total = 0
        idle = list(self.senders)
        busy = 0
        failed = True
        _asynchronous_commits(True)
        try:
            while True:
                while idle and (note := self._next()) is not None:
                    if self.limiter is not None:
                        self.limiter.acquire()
                    idle.pop().submit(self._outgoing(note))
                    busy += 1
                if not busy:
                    failed = False
                    return sent_total
                sender, outgoing, error = self.ready.get()
                busy -= 1
                if error is not None:
                    raise error
                # The end of this message and its mark, one message at a time
                # across all connections: only this message is ever accepted
                # and not yet marked.
                sender.finish()
                # Its mark is on its way to the database before any other
                # message ends (and is confirmed while the next one does).
                self._record_sent(outgoing)
                idle.append(sender)
                sent_total += 1
        except BaseException as exc:
            # BaseException too: a warm shutdown or Ctrl-C gives the unsent rest
            # back now rather than after SENDING_STALE_MINUTES. The message in
            # flight goes back with it: whether it went out is unknown, and
            # sending it twice is preferred to losing it.
            self._settle_quietly()
            Notification.objects.filter(pk__in=self.held, status=Notification.Status.SENDING).update(
                status=Notification.Status.PENDING, error=str(exc)[:1000] or type(exc).__name__, claimed_at=None
            )
            raise
        finally:
            self._locale_leave()
            self._settle_quietly()
            _asynchronous_commits(False)
            for sender in self.senders:
                sender.stop(abandon=failed)

    def _next(self) -> Notification | None:
        """The next message to send, claiming a chunk when none is left; None when the outbox is empty."""
        while True:
            if not self.queue:
                self._settle()
                batch = _claim_notifications(
                    operation_id=self.operation_id, limit=NOTIFICATION_CHUNK, after=self.claimed_up_to, courses=self.courses
                )
                if not batch:
                    return None
                self.claimed_up_to = batch[-1].pk
                if not self.held:
                    self.renewed_at = timezone.now()
                self.held.update(n.pk for n in batch)
                self.locales.update(recipient_locales(n for n in batch if not n.body))
                self.queue.extend(batch)
            note = self.queue.popleft()
            if note.course is None and not note.body:
                # Its course was deleted before delivery: nothing left to announce.
                self._settle()
                Notification.objects.filter(pk=note.pk).update(status=Notification.Status.FAILED, error="course deleted")
                self.held.discard(note.pk)
                continue
            return note

    def _outgoing(self, note: Notification) -> _Outgoing:
        message_id = make_msgid(domain=self.domain)
        if note.course is None:
            # A message written out in full outlives its course: it needs no builder.
            builder = None
        elif (builder := self.builders.get(note.course_id)) is None:  # type: ignore[arg-type]
            builder = self.builders[note.course_id] = MessageBuilder(note.course)  # type: ignore[index]
        locale = self.locales.pop(note.pk, None)
        if note.body or locale is None:
            # Written out in full, in its recipient's language, when the row was.
            self._locale_leave()
            return self._built(note, message_id, builder)
        if locale != self.locale:
            # Switched only when it changes: most messages of a run share one
            # (activating a language and a zone per message was a tenth of the
            # delivering thread's work).
            self._locale_leave()
            self.locale_held.enter_context(in_locale(locale))
            self.locale = locale
        return self._built(note, message_id, builder)

    def _locale_leave(self) -> None:
        self.locale_held.close()
        self.locale = None

    def _built(self, note: Notification, message_id: str, builder: MessageBuilder | None) -> _Outgoing:
        if self.staged:
            data = (builder or _BARE).message_bytes(note, message_id=message_id)
            return _Outgoing(note=note, message_id=message_id, data=data)
        return _Outgoing(note=note, message_id=message_id, message=(builder or _BARE).message(note, message_id=message_id))

    def _settle(self) -> None:
        """Wait for the mark on its way (if any): the connection is then free for other statements."""
        if (pk := self.marks.settle()) is not None:
            # Only now, when its mark stands: until then it would go back with the rest on an error.
            self.held.discard(pk)

    def _settle_quietly(self) -> None:
        try:
            self._settle()
        except DatabaseError:
            pass  # its row stays held: given back with the rest, or swept if the database is gone

    def _record_sent(self, outgoing: _Outgoing) -> None:
        # One UPDATE per message, committed at once (autocommit): it is what
        # limits a crash to at most one duplicate instead of a whole chunk.
        # When the claim on the rest of the held rows is getting old, the same
        # statement renews it: however slow delivery as a whole (a slow SMTP
        # server, a rate limit), no held row gets as old as
        # SENDING_STALE_MINUTES while its sender is alive, so the sweep never
        # hands them to a second worker to send again. Renewing only then keeps
        # the statement to one row almost always.
        now = timezone.now()
        pk = outgoing.note.pk
        self._settle()
        if now - self.renewed_at < timedelta(seconds=CLAIM_RENEW_SECONDS):
            self.marks.send(pk, outgoing.message_id, now)
            return
        self.renewed_at = now
        mine = Q(pk=pk)
        Notification.objects.filter(pk__in=self.held, status=Notification.Status.SENDING).update(
            status=Case(When(mine, then=Value(Notification.Status.SENT)), default=F("status")),
            sent_at=Case(When(mine, then=Value(now)), default=F("sent_at")),
            message_id=Case(When(mine, then=Value(outgoing.message_id)), default=F("message_id")),
            claimed_at=now,
        )
        self.held.discard(pk)


class _Marks:
    """The mark of one message sent, one autocommitted UPDATE, in SQL (compiling
    the ORM's UPDATE costs several times what the database does for it).

    On PostgreSQL ``send`` writes the statement to the database's socket and
    returns without its reply, which ``settle`` reads (before the next
    statement on the connection): the mark of one message travels while the
    next message ends, instead of one round trip after the other. A worker
    killed after ``send`` still delivers the mark: the kernel sends what the
    process wrote before it died (the socket closes after it), and PostgreSQL
    runs and commits a statement it received whole although its client is
    gone. The previous mark's reply is always read before a mark is written:
    a reply left unread would turn the dead process's close into a reset,
    which can discard what it wrote; the only reply that can be waiting then
    is this mark's own, which the database sends once it ran it. Elsewhere
    (SQLite) ``send`` runs the statement and waits."""

    def __init__(self) -> None:
        self.pipelined = connection.vendor == "postgresql"
        self.in_flight: int | None = None

    def send(self, pk: int, message_id: str, now) -> None:
        assert self.in_flight is None, "settle the previous mark first"
        sent, sending = Notification.Status.SENT, Notification.Status.SENDING
        if not self.pipelined:
            with connection.cursor() as cursor:
                cursor.execute(_MARK_SENT, [sent, now, message_id, now, pk, sending])
            self.in_flight = pk
            return
        from psycopg import generators

        def write(sql, params, many, context):
            raw = connection.connection
            with connection.wrap_database_errors:
                raw.pgconn.send_query_params(_MARK_SENT_LIBPQ, [str(p).encode() for p in params])
                self.in_flight = pk
                raw.wait(generators.send(raw.pgconn))

        connection.ensure_connection()
        at = now.isoformat()
        params = [sent, at, message_id, at, pk, sending]
        # Seen as any statement is: by execute wrappers (counting, say) and in the query log when it is kept.
        execute = write
        for wrapper in reversed(connection.execute_wrappers):
            execute = functools.partial(wrapper, execute)
        execute(_MARK_SENT, params, False, {"connection": connection, "cursor": None})
        if connection.queries_logged:
            connection.queries_log.append({"sql": _MARK_SENT % tuple(map(repr, params)), "time": "0.000"})

    def settle(self) -> int | None:
        """The id of the message whose mark is now committed (None when none was on its way); raises if it failed."""
        pk, self.in_flight = self.in_flight, None
        if pk is None or not self.pipelined:
            return pk
        from psycopg import errors, generators, pq

        raw = connection.connection
        with connection.wrap_database_errors:
            results = raw.wait(generators.fetch_many(raw.pgconn))
            for result in results:
                if result.status != pq.ExecStatus.COMMAND_OK:
                    raise errors.error_from_result(result, encoding=raw.info.encoding)
        return pk


_MARK_SENT = """
    UPDATE enrollments_notification SET status = %s, sent_at = %s, message_id = %s, claimed_at = %s
    WHERE id = %s AND status = %s
"""
_MARK_SENT_LIBPQ = _MARK_SENT.replace("%s", "${}").format(*range(1, 7)).encode()


def _asynchronous_commits(on: bool) -> None:
    # The marks commit one per message, one at a time: waiting for each
    # commit's WAL flush would make the disk's flush time the pace of email
    # (7 ms a message on a busy disk). Without the wait a commit is still
    # safe from the worker's crash (it is in the database server's memory
    # once COMMIT returns); only a crash of the database server itself can
    # lose the marks of its last fraction of a second (up to three times
    # wal_writer_delay), whose messages then go out again.
    if connection.vendor != "postgresql":
        return
    if on:
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")
        return
    if connection.needs_rollback:
        return  # inside a failed atomic block, whose rollback undoes the SET
    try:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")
    except DatabaseError:
        pass  # a broken connection is discarded, and its setting with it; the error that broke it propagates


@dataclass
class _Outgoing:
    note: Notification
    message_id: str
    data: bytes = b""
    message: EmailMessage | None = None


class _BareBuilder:
    """Messages whose text was stored in full (``body``), course or not."""

    def message(self, note: Notification, *, message_id: str, connection=None) -> EmailMessage:
        return EmailMessage(subject=note.subject, body=note.body, from_email=settings.DEFAULT_FROM_EMAIL, to=[note.recipient],
                            connection=connection, headers={"Message-ID": message_id})

    def message_bytes(self, note: Notification, *, message_id: str) -> bytes:
        return self.message(note, message_id=message_id).message().as_bytes(linesep="\r\n")


_BARE = _BareBuilder()


class _InlineSender:
    """Any backend, in the calling thread: the whole message goes out at ``finish``."""

    def __init__(self, backend, ready: queue.Queue):
        self.backend, self.ready = backend, ready
        self.outgoing: _Outgoing | None = None

    def submit(self, outgoing: _Outgoing) -> None:
        self.outgoing = outgoing
        self.ready.put((self, outgoing, None))

    def finish(self) -> None:
        assert self.outgoing is not None and self.outgoing.message is not None
        self.outgoing.message.connection = self.backend
        self.backend.open()
        self.backend.send_messages([self.outgoing.message])

    def stop(self, *, abandon: bool) -> None:
        self.backend.close()


class _ThreadSender:
    """One SMTP connection in a thread of its own: it sends a message all but
    its end (``stage_bytes``) and reports ready; the calling thread ends it
    (``finish``) and marks it, then hands it the next."""

    def __init__(self, backend, ready: queue.Queue):
        self.backend, self.ready = backend, ready
        self.inbox: queue.Queue = queue.Queue()
        self.envelope_from = sanitize_address(settings.DEFAULT_FROM_EMAIL, settings.DEFAULT_CHARSET)
        self.thread = threading.Thread(target=self._run, name="outbox-smtp", daemon=True)
        self.thread.start()

    def submit(self, outgoing: _Outgoing) -> None:
        self.inbox.put(outgoing)

    def _run(self) -> None:
        while (outgoing := self.inbox.get()) is not None:
            try:
                recipient = outgoing.note.recipient
                if not recipient.isascii():
                    recipient = sanitize_address(recipient, settings.DEFAULT_CHARSET)
                self.backend.stage_bytes(self.envelope_from, [recipient], outgoing.data)
            except BaseException as exc:  # reported to the calling thread, which gives the rows back
                self.ready.put((self, outgoing, exc))
            else:
                self.ready.put((self, outgoing, None))

    def finish(self, meanwhile=None) -> None:
        self.backend.finish(meanwhile)

    def stop(self, *, abandon: bool) -> None:
        self.inbox.put(None)
        if abandon:
            # Ends nothing: a message this connection staged is discarded by the server.
            self.backend.abandon()
        self.thread.join(timeout=settings.EMAIL_TIMEOUT or None)
        if not abandon:
            self.backend.close()


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
