"""A real worker killed (SIGKILL) in the middle of a chunk of emails: every
message it sent is already marked sent, so delivery after the crash sends the
rest and repeats at most the one in flight, also over several SMTP connections."""

import signal
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from enrollments.models import Notification
from enrollments.services import enrollment_batch_update
from enrollments.tasks import sweep_notifications
from tests.celery_worker import celery_worker  # noqa: F401

from ..factories import CourseFactory
from ..smtp_sink import SmtpSink, free_port

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.mark.worker_env(EMAIL_BACKEND="tests.stalling_mail.EmailBackend", STALLING_MAIL_AFTER="3")
def test_a_worker_killed_mid_chunk_sends_no_message_twice(celery_worker, settings):  # noqa: F811
    course = CourseFactory(display_name="Crash Course")
    emails = [f"crash{i}@example.com" for i in range(10)]
    enrollment_batch_update(
        course=course, identifiers=emails, action="enroll", auto_enroll=True, email_students=True, actor=None,
    )  # fmt: skip

    # The worker sends three, then hangs on the fourth: kill it there.
    celery_worker.wait_for(lambda: len(celery_worker.emails()) >= 3, what="three emails")
    # Its mark follows each message: wait for the third one's too.
    celery_worker.wait_for(
        lambda: Notification.objects.filter(status=Notification.Status.SENT).count() == 3, what="three marked sent"
    )
    celery_worker.process.send_signal(signal.SIGKILL)
    celery_worker.process.wait(timeout=10)
    sent_by_worker = [e["to"] for e in celery_worker.emails()]
    assert len(sent_by_worker) == 3
    assert Notification.objects.filter(status=Notification.Status.SENDING).count() == 7

    # The periodic sweep, once the claim is stale, delivers the other seven.
    Notification.objects.filter(status=Notification.Status.SENDING).update(claimed_at=timezone.now() - timedelta(hours=1))
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox.clear()
    assert sweep_notifications.apply().get() == 7
    resent = [m.to[0] for m in mail.outbox]
    assert sorted(sent_by_worker + resent) == sorted(emails)
    assert Notification.objects.filter(status=Notification.Status.SENT).count() == 10


SINK_PORT = free_port()


@pytest.mark.worker_env(
    EMAIL_BACKEND="enrollment_site.lib.mail.SMTPEmailBackend", EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(SINK_PORT), EMAIL_CONNECTIONS="3",
)  # fmt: skip
def test_a_worker_killed_while_its_server_answers_repeats_only_that_message(celery_worker, settings):  # noqa: F811
    """Three SMTP connections to a real server, which holds back its answer to
    the fifth message's end of data: the worker is killed waiting for it, with
    the other connections' messages all but ended. Four are marked sent, the
    server has five; delivery after the stale sweep sends the other fifteen
    and the fifth again, the one duplicate."""
    with SmtpSink(SINK_PORT, stall_at=5) as sink:
        course = CourseFactory(display_name="Crash Course")
        emails = [f"smtp{i}@example.com" for i in range(20)]
        enrollment_batch_update(
            course=course, identifiers=emails, action="enroll", auto_enroll=True, email_students=True, actor=None,
        )  # fmt: skip
        celery_worker.wait_for(lambda: sink.handler.count == 5, what="the fifth message at the server")
        celery_worker.wait_for(
            lambda: Notification.objects.filter(status=Notification.Status.SENT).count() == 4, what="four marked sent"
        )
        celery_worker.process.send_signal(signal.SIGKILL)
        celery_worker.process.wait(timeout=10)
        assert len(sink.messages) == 5  # the others' messages, all but ended, died with their connections

        Notification.objects.filter(status=Notification.Status.SENDING).update(claimed_at=timezone.now() - timedelta(hours=1))
        settings.EMAIL_BACKEND = "enrollment_site.lib.mail.SMTPEmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_CONNECTIONS = "127.0.0.1", SINK_PORT, 3
        assert sweep_notifications.apply().get() == 16
        received = sink.recipients()
    assert sorted(set(received)) == sorted(emails)
    assert len(received) == 21 and received.count(received[4]) == 2
    assert Notification.objects.filter(status=Notification.Status.SENT).count() == 20


KILLING_SINK_PORT = free_port()


@pytest.mark.worker_env(
    EMAIL_BACKEND="tests.killing_mail.EmailBackend", KILLING_MAIL_AT="6",
    EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(KILLING_SINK_PORT), EMAIL_CONNECTIONS="3",
)  # fmt: skip
def test_a_worker_killed_with_a_mark_on_its_way_keeps_the_mark(celery_worker, settings):  # noqa: F811
    """The worker dies as it is about to end the sixth message: the fifth
    message's mark was written to PostgreSQL, its reply not yet read. The mark
    stands all the same (the database got the statement whole and committed
    it), so delivery after the stale sweep sends the other fifteen and repeats
    none."""
    with SmtpSink(KILLING_SINK_PORT) as sink:
        course = CourseFactory(display_name="Crash Course")
        emails = [f"mark{i}@example.com" for i in range(20)]
        enrollment_batch_update(
            course=course, identifiers=emails, action="enroll", auto_enroll=True, email_students=True, actor=None,
        )  # fmt: skip
        celery_worker.process.wait(timeout=60)
        assert len(sink.messages) == 5
        # The database runs a statement it received before it sees its client gone: once the
        # worker's session has ended, whatever it wrote has been run.
        _wait_for_other_sessions_to_end()
        assert Notification.objects.filter(status=Notification.Status.SENT).count() == 5
        assert Notification.objects.filter(status=Notification.Status.SENDING).count() == 15

        Notification.objects.filter(status=Notification.Status.SENDING).update(claimed_at=timezone.now() - timedelta(hours=1))
        settings.EMAIL_BACKEND = "enrollment_site.lib.mail.SMTPEmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_CONNECTIONS = "127.0.0.1", KILLING_SINK_PORT, 3
        assert sweep_notifications.apply().get() == 15
        received = sink.recipients()
    assert sorted(received) == sorted(emails)  # each once
    assert Notification.objects.filter(status=Notification.Status.SENT).count() == 20


def _wait_for_other_sessions_to_end(timeout: float = 30) -> None:
    from django.db import connection

    deadline = time.monotonic() + timeout
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            (others,) = cursor.fetchone()
        if not others:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{others} other database sessions still open {timeout}s after the worker died")
        time.sleep(0.1)
