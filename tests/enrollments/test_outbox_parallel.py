"""Outbox delivery over several SMTP connections to a real local SMTP server:
each message once, pipelined where the server offers it, at most the rate
set, and at most one duplicate when the sender dies in the middle."""

import email
import email.policy
from datetime import timedelta

import pytest
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.html import escape

from enrollment_site.lib.mail import RateLimiter
from enrollments.models import Notification
from enrollments.notifications import MessageBuilder
from enrollments.services import enrollment_batch_update, notifications_requeue_stale, notifications_send, outbox

from ..factories import CourseFactory, UserFactory
from ..smtp_sink import SmtpSink

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings):
    """Delivery through the pipelining SMTP backend, three connections, to a local sink."""

    def start(**options):
        sink = SmtpSink(**options).__enter__()
        started.append(sink)
        settings.EMAIL_BACKEND = "enrollment_site.lib.mail.SMTPEmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_CONNECTIONS = 3
        return sink

    started: list[SmtpSink] = []
    yield start
    for sink in started:
        sink.__exit__(None, None, None)


def queue_emails(count, prefix="p"):
    course = CourseFactory(display_name="Parallel 101")
    emails = [f"{prefix}{i}@example.com" for i in range(count)]
    enrollment_batch_update(course=course, identifiers=emails, action="enroll", auto_enroll=True, email_students=True, actor=None)
    # The batch's on-commit task does not run inside the test's transaction: the rows wait.
    assert Notification.objects.filter(status=Notification.Status.PENDING).count() == count
    return emails


def test_each_message_goes_out_once_over_several_connections(smtp, monkeypatch):
    sink = smtp()
    monkeypatch.setattr(outbox, "NOTIFICATION_CHUNK", 7)  # several chunks, claimed while connections are busy
    emails = queue_emails(30)
    assert notifications_send() == 30
    assert sorted(sink.recipients()) == sorted(emails)
    assert sink.handler.sessions == 3  # each connection kept for the whole delivery
    assert set(Notification.objects.values_list("status", flat=True)) == {Notification.Status.SENT}
    # Each row records the Message-ID its message went out with.
    received = {email.message_from_bytes(data)["Message-ID"] for _, data in sink.messages}
    assert received == set(Notification.objects.values_list("message_id", flat=True))
    assert notifications_send() == 0 and len(sink.messages) == 30


@pytest.mark.parametrize("pipelining", [True, False], ids=["offered", "absent"])
def test_commands_are_pipelined_only_where_the_server_offers_it(smtp, pipelining):
    sink = smtp(pipelining=pipelining)
    emails = queue_emails(6)
    assert notifications_send() == 6
    assert sorted(sink.recipients()) == sorted(emails)
    together = [r for r in sink.handler.reads if b"MAIL FROM:" in r and b"RCPT TO:" in r and b"DATA\r\n" in r]
    alone = [r for r in sink.handler.reads if r.startswith(b"MAIL FROM:") and b"RCPT TO:" not in r]
    if pipelining:
        assert len(together) == 6 and not alone
    else:
        assert not together and len(alone) == 6


def test_a_sender_dying_mid_delivery_repeats_at_most_one_message(smtp, monkeypatch):
    """Killed right after the server accepted the 11th message, before its
    mark: the other connections had messages all but ended, which the server
    drops with the connection. Delivery after the stale sweep sends the rest;
    one message (the 11th) arrives twice, no other."""
    sink = smtp()
    emails = queue_emails(30, prefix="k")

    class Killed(BaseException):
        """Stands for SIGKILL: nothing gives the rows back."""

    ends = {"n": 0}
    real_finish = outbox._ThreadSender.finish

    def finish_then_die(self, meanwhile=None):
        # The server said yes to the 11th message; its mark has not committed.
        real_finish(self, meanwhile)
        ends["n"] += 1
        if ends["n"] == 11:
            raise Killed

    real_update = QuerySet.update

    def update_unless_giving_back(qs, **kwargs):
        if kwargs.get("status") == Notification.Status.PENDING:
            return 0
        return real_update(qs, **kwargs)

    monkeypatch.setattr(outbox._ThreadSender, "finish", finish_then_die)
    monkeypatch.setattr(QuerySet, "update", update_unless_giving_back)
    with pytest.raises(Killed):
        notifications_send()
    monkeypatch.undo()
    assert len(sink.messages) == 11  # ten marked, the eleventh accepted and not marked
    assert Notification.objects.filter(status=Notification.Status.SENT).count() == 10

    Notification.objects.filter(status=Notification.Status.SENDING).update(claimed_at=timezone.now() - timedelta(hours=1))
    assert notifications_requeue_stale() == 20
    assert notifications_send() == 20
    received = sink.recipients()
    assert sorted(set(received)) == sorted(emails)
    assert len(received) == 31  # one duplicate


def test_a_message_the_server_refuses_at_its_end_goes_back_to_pending(smtp):
    import smtplib

    sink = smtp(refuse="p3@example.com")
    emails = queue_emails(6)
    with pytest.raises(smtplib.SMTPDataError):
        notifications_send()
    refused = Notification.objects.get(recipient="p3@example.com")
    assert refused.status == Notification.Status.PENDING and "Refused" in refused.error
    assert not Notification.objects.filter(status=Notification.Status.SENDING).exists()
    sent = set(Notification.objects.filter(status=Notification.Status.SENT).values_list("recipient", flat=True))
    assert sent == set(sink.recipients()) and "p3@example.com" not in sent and sent < set(emails)


def test_the_rate_limit_holds_across_connections(smtp, monkeypatch, settings):
    """With EMAIL_RATE_PER_SECOND=4, twelve messages over three connections
    start four per second of a clock the limiter is given (and moves when it
    waits): counted decisions, not timing."""
    sink = smtp()
    settings.EMAIL_RATE_PER_SECOND = 4
    clock = {"now": 1000.25}
    granted: list[int] = []

    class CountingLimiter(RateLimiter):
        def __init__(self, rate, **kwargs):
            super().__init__(rate, clock=lambda: clock["now"], sleep=lambda s: clock.update(now=clock["now"] + s), **kwargs)

        def acquire(self):
            super().acquire()
            granted.append(int(clock["now"]))

    monkeypatch.setattr(outbox, "RateLimiter", CountingLimiter)
    queue_emails(12)
    assert notifications_send() == 12
    assert len(sink.messages) == 12
    assert granted == [1000] * 4 + [1001] * 4 + [1002] * 4


def test_the_limiter_counts_per_second_for_every_sender_sharing_the_cache():
    from django.core.cache import cache

    clock = {"now": 50.0}
    waits: list[float] = []

    def sleep(seconds):
        waits.append(seconds)
        clock["now"] += seconds

    a, b = (RateLimiter(3, key="test-rate", cache=cache, clock=lambda: clock["now"], sleep=sleep) for _ in range(2))
    seconds = []
    for limiter in [a, b] * 4:
        limiter.acquire()
        seconds.append(int(clock["now"]))
    assert seconds == [50, 50, 50, 51, 51, 51, 52, 52]
    assert waits == [1.0, 1.0]


@pytest.mark.parametrize("name", ["Ann O'Neil", "Zoë Ångström", ""], ids=["ascii", "non-ascii", "no-name"])
def test_a_message_filled_from_its_template_equals_the_one_django_builds(name):
    course = CourseFactory(display_name="Filled <in> & out")
    user = UserFactory(first_name=name, last_name="", email="ann.o'neil+x@example.com")
    enrollment_batch_update(course=course, identifiers=[user.username], action="enroll", auto_enroll=True, email_students=True, actor=None,
                            reason="Welcome & <hello>")
    note = Notification.objects.get()
    builder = MessageBuilder(course)
    builder.message_bytes(note, message_id="<warm@example>")  # the template is built and cached
    filled = email.message_from_bytes(builder.message_bytes(note, message_id="<one@example>"), policy=email.policy.default)
    django = email.message_from_bytes(builder.message(note, message_id="<one@example>").message().as_bytes(linesep="\r\n"), policy=email.policy.default)
    for header in ("From", "To", "Subject", "Message-ID", "MIME-Version", "Content-Type"):
        assert filled[header].split(";")[0] == django[header].split(";")[0], header
    parts = [(p.get_content_type(), p.get_content()) for p in filled.walk() if not p.is_multipart()]
    assert parts == [(p.get_content_type(), p.get_content()) for p in django.walk() if not p.is_multipart()]
    assert f"Dear {note.name}," in parts[0][1] and f"Dear {escape(note.name)}," in parts[1][1]


def test_the_backend_sends_any_django_email_pipelined(smtp):
    from django.core.mail import send_mail

    sink = smtp()
    assert send_mail("Activate your account", "Open the link", "noreply@localhost", ["new@example.com"]) == 1
    assert sink.recipients() == ["new@example.com"]
    assert any(b"MAIL FROM:<noreply@localhost>" in r and b"RCPT TO:<new@example.com>" in r for r in sink.handler.reads)


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_deliveries_side_by_side_send_each_message_once(smtp, monkeypatch):
    """Two workers drain one outbox at the same moment, three connections
    each, in small chunks (so that their claims interleave): every message goes
    out once, each row marked with the Message-ID it went out with."""
    from tests.races import call_together

    sink = smtp()
    monkeypatch.setattr(outbox, "NOTIFICATION_CHUNK", 5)
    course = CourseFactory(display_name="Side by side")
    emails = [f"side{i}@example.com" for i in range(60)]
    Notification.objects.bulk_create(
        Notification(kind=Notification.Kind.ENROLLED, recipient=e, recipient_key=e, subject="Enrolled", name="", course=course)
        for e in emails
    )
    sent = call_together([notifications_send, notifications_send])
    assert all(isinstance(n, int) for n in sent), sent
    assert sum(sent) == 60
    assert sorted(sink.recipients()) == sorted(emails)
    received = {email.message_from_bytes(data)["Message-ID"] for _, data in sink.messages}
    assert received == set(Notification.objects.values_list("message_id", flat=True))
    assert set(Notification.objects.values_list("status", flat=True)) == {Notification.Status.SENT}
