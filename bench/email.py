"""Email benchmark: the outbox delivering notifications to a local SMTP server,
against a bare ``smtplib`` loop sending the same messages over the same number
of connections to the same server, in one run, on PostgreSQL.

    DATABASE_URL=postgres://... python -m bench.email

Creates (and drops first) its own database, ``<name>_bench_email``, starts an
aiosmtpd sink in a process of its own (offering PIPELINING), writes
BENCH_EMAIL_SIZE outbox rows (100,000 by default) set-based, as a
100,000-identifier API call leaves them (one operation, one course, each
learner greeted by name), and times:

- the bare loop: ``smtplib.SMTP.sendmail`` of each message, rendered
  beforehand, over BENCH_EMAIL_CONNECTIONS (default ``EMAIL_CONNECTIONS``, 4)
  connections, one thread each, run before and after the outbox (the two
  runs' mean is the baseline);
- the outbox: ``notifications_send(operation_id=...)``, the code the
  ``send_notifications`` task runs, in this process, through
  ``enrollment_site.lib.mail.SMTPEmailBackend``: claims, rendering, SMTP and
  one committed mark per message.

Prints messages per second, the outbox's SQL statements (every one counted,
the marks written over libpq too) and the ratio (goal:
within 2x). ``bench.flat`` runs the same measurement on its database through
:func:`flat_rows` (what ``make bench`` runs). Figures are printed, never asserted."""

import multiprocessing
import os
import smtplib
import threading
import time
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

from bench.common import Measure, bench_course, fresh_database  # noqa: E402

SIZE = int(os.environ.get("BENCH_EMAIL_SIZE", "100000"))


def _queue(course, size: int) -> uuid.UUID:
    """``size`` outbox rows of one operation, written by one INSERT … SELECT."""
    from django.db import connection

    operation_id = uuid.uuid4()
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO enrollments_notification (operation_id, kind, recipient, recipient_key, subject, body, name, auto_enroll,
                                                  reason, course_id, status, attempts, created, message_id, error)
            SELECT %s, 'enrolled', 'learner' || n || '@example.org', 'learner' || n || '@example.org', %s, '', 'Learner ' || n,
                   false, '', %s, 'pending', 0, now(), '', ''
            FROM generate_series(1, %s) AS n
            """,
            [operation_id, f"You have been enrolled in {course.display_name}", course.pk, size],
        )
        cur.execute("ANALYZE enrollments_notification")
    return operation_id


def _rendered(course, operation_id) -> list[tuple[str, bytes]]:
    """Every message of the operation as the bytes SMTP sends, rendered beforehand (untimed)."""
    from email.utils import make_msgid

    from enrollments.models import Notification
    from enrollments.notifications import MessageBuilder

    notes = list(Notification.objects.filter(operation_id=operation_id).select_related("course").order_by("id"))
    builder = MessageBuilder(course)
    return [(n.recipient, builder.message_bytes(n, message_id=make_msgid(domain="bench.invalid"))) for n in notes]


def _bare_loop(messages, *, port: int, connections: int) -> float:
    """Seconds for ``connections`` threads, one ``smtplib.SMTP`` each, to send their share of ``messages``."""
    from django.conf import settings

    sender = settings.DEFAULT_FROM_EMAIL

    def send(share):
        smtp = smtplib.SMTP("127.0.0.1", port)
        for recipient, data in share:
            smtp.sendmail(sender, [recipient], data)
        smtp.quit()

    threads = [threading.Thread(target=send, args=(messages[i::connections],)) for i in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def _wait_for(counter, expected: int) -> None:
    deadline = time.monotonic() + 60
    while counter.value < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    if counter.value != expected:
        raise SystemExit(f"the SMTP sink counted {counter.value:,} messages, expected {expected:,}")


def deliver(size: int, connections: int) -> dict:
    """On the current database: start the sink, queue ``size`` notifications,
    time the bare loop, the outbox and the bare loop again. Returns seconds
    (``before``, ``outbox``, ``after``) and the outbox's ``queries``."""
    from django.conf import settings

    from enrollments.models import Notification
    from enrollments.services import notifications_send
    from tests.smtp_sink import free_port, serve_forever

    port = free_port()
    context = multiprocessing.get_context("spawn")
    ready, counter = context.Event(), context.Value("q", 0)
    sink = context.Process(target=serve_forever, args=(port, True, ready, counter), daemon=True)
    sink.start()
    ready.wait(30)
    settings.EMAIL_BACKEND = "enrollment_site.lib.mail.SMTPEmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS, settings.EMAIL_USE_SSL = "127.0.0.1", port, False, False
    settings.EMAIL_CONNECTIONS = connections
    # As in production: no query log (DEBUG keeps every statement's text in memory).
    settings.DEBUG = False
    try:
        course = bench_course(f"EMAIL{uuid.uuid4().hex[:8]}")
        warm = _queue(course, 50)
        notifications_send(operation_id=warm)
        operation_id = _queue(course, size)
        messages = _rendered(course, operation_id)
        sent = counter.value

        bare_before = _bare_loop(messages, port=port, connections=connections)
        _wait_for(counter, sent + size)
        with Measure() as m:
            delivered = notifications_send(operation_id=operation_id)
        _wait_for(counter, sent + 2 * size)
        bare_after = _bare_loop(messages, port=port, connections=connections)
        _wait_for(counter, sent + 3 * size)
    finally:
        sink.terminate()
    assert delivered == size == Notification.objects.filter(operation_id=operation_id, status="sent").count()
    # bench.flat reuses its database: the next run starts from the same outbox.
    Notification.objects.filter(course=course).delete()
    return {"before": bare_before, "outbox": m.seconds, "after": bare_after, "queries": m.queries}


def flat_rows(ctx) -> list[dict]:
    """The email row of ``bench.flat``'s table, on its database: 10,000
    notifications at the small scale, 100,000 at 1m (BENCH_EMAIL_SIZE overrides)."""
    from django.conf import settings

    size = int(os.environ.get("BENCH_EMAIL_SIZE", 100_000 if ctx.scale == "1m" else 10_000))
    connections = int(os.environ.get("BENCH_EMAIL_CONNECTIONS", settings.EMAIL_CONNECTIONS))
    t = deliver(size, connections)
    return [{
        "what": f"{size:,} notifications delivered to a local SMTP server (aiosmtpd, PIPELINING), {connections} connections",
        "here": t["outbox"], "baseline_what": "a bare `smtplib` loop, same messages and connections",
        "baseline": (t["before"] + t["after"]) / 2, "queries": f"{t['queries']:,} / 0",
    }]  # fmt: skip


def main():
    name = fresh_database("bench_email")
    from django.conf import settings

    connections = int(os.environ.get("BENCH_EMAIL_CONNECTIONS", settings.EMAIL_CONNECTIONS))
    print(f"Email benchmark on PostgreSQL (database {name}); {SIZE:,} notifications to a local aiosmtpd sink "
          f"(PIPELINING offered, its own process), {connections} connections")
    t = deliver(SIZE, connections)
    bare = (t["before"] + t["after"]) / 2
    print(f"  bare smtplib loop, before        {t['before']:8.2f} s  {SIZE / t['before']:8,.0f} messages/s")
    print(f"  outbox (notifications_send)      {t['outbox']:8.2f} s  {SIZE / t['outbox']:8,.0f} messages/s  {t['queries']:,} SQL statements")
    print(f"  bare smtplib loop, after         {t['after']:8.2f} s  {SIZE / t['after']:8,.0f} messages/s")
    print(f"  outbox / bare loop = {t['outbox'] / bare:5.2f}x   (goal: within 2x)")


if __name__ == "__main__":
    main()
