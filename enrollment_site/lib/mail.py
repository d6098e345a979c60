"""Email plumbing shared by every sender: the embedded default's backend, an
SMTP backend that pipelines and can hold a message back at its very end (what
the outbox needs to send over several connections and still mark each message
the moment the server took it), a per-second rate limit, and message
templates filled per recipient without building a MIME tree each time."""

from __future__ import annotations

import smtplib
import socket
import sys
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate

from django.conf import settings
from django.core.cache import cache as default_cache
from django.core.mail import EmailMessage
from django.core.mail.backends.filebased import EmailBackend as FileBackend
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend


class FileAndConsoleEmailBackend(FileBackend):
    """The embedded default: every message is saved whole to a file under
    ``EMAIL_FILE_PATH`` (one file per connection, as Django's file backend does)
    and announced on the console in one line, with its links, so that someone
    running the app without an SMTP server still sees (and can click) every
    activation link without the console filling up: a line of about a hundred
    characters per message, not the whole message."""

    def write_message(self, message):
        super().write_message(message)
        links = " ".join(_links(message.body))
        sys.stdout.write(f"email to {', '.join(message.recipients())}: {message.subject}{'  ' + links if links else ''}\n")
        sys.stdout.flush()


def _links(body: str) -> list[str]:
    return [word for word in body.split() if word.startswith(("http://", "https://"))][:3]


# --- SMTP with pipelining and a held-back end of data ---------------------------------------------------


class PipeliningSMTP(smtplib.SMTP):
    """``stage`` sends everything of a message but its end: MAIL, RCPT and DATA
    (in one write when the server offers PIPELINING, RFC 2920; one reply at a
    time otherwise), then the content. ``finish`` sends the end of data and
    reads the server's verdict. Until then the server has accepted nothing: a
    connection dropped in between delivers nothing (RFC 5321, 4.1.1.4)."""

    def connect(self, host="localhost", port=0, source_address=None):
        reply = super().connect(host, port, source_address)
        # The end of data is a small write right after the content: without
        # this, Nagle's algorithm holds it until the server acknowledges the
        # content, which a delayed ACK puts off by up to 40 ms per message.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reply

    def stage(self, from_addr: str, to_addrs: list[str], msg: bytes) -> dict:
        """Returns the recipients the server refused (as ``sendmail`` does), raising when it refused them all."""
        self.ehlo_or_helo_if_needed()
        options = f" SIZE={len(msg)}" if self.does_esmtp and self.has_extn("size") else ""
        commands = [f"MAIL FROM:{smtplib.quoteaddr(from_addr)}{options}"] + [f"RCPT TO:{smtplib.quoteaddr(a)}" for a in to_addrs]
        for command in commands:
            if "\r" in command or "\n" in command:
                raise ValueError("command and arguments contain prohibited newline characters")
        if self.does_esmtp and self.has_extn("pipelining"):
            self.send("".join(f"{c}\r\n" for c in commands) + "DATA\r\n")
            replies = [self.getreply() for _ in range(len(commands) + 1)]
        else:
            replies = []
            for command in commands:
                self.send(f"{command}\r\n")
                replies.append(self.getreply())
                if len(replies) == 1 and replies[0][0] != 250:
                    break
            else:
                self.send("DATA\r\n")
                replies.append(self.getreply())
        code, reply = replies[0]
        if code != 250:
            self._reset_after_refusal(replies)
            raise smtplib.SMTPSenderRefused(code, reply, from_addr)
        # Past a refused MAIL both ways have read every reply: one per RCPT and the DATA's last.
        refused = {addr: r for addr, r in zip(to_addrs, replies[1:-1], strict=True) if r[0] not in (250, 251)}
        data_code, data_reply = replies[-1]
        if len(refused) == len(to_addrs) or data_code != 354:
            self._reset_after_refusal(replies)
            if refused:
                raise smtplib.SMTPRecipientsRefused(refused)
            raise smtplib.SMTPDataError(data_code, data_reply)
        content = smtplib._quote_periods(msg)  # type: ignore[attr-defined]
        if not content.endswith(b"\r\n"):
            content += b"\r\n"
        self.send(content)
        return refused

    def _reset_after_refusal(self, replies) -> None:
        if replies[-1][0] == 354:
            # A server that said yes to DATA anyway is given an empty end and then forgets it all (RSET).
            self.send(b".\r\n")
            self.getreply()
        self.rset()

    def finish(self, meanwhile: Callable[[], object] | None = None) -> None:
        """End the staged message; ``meanwhile`` runs while the server decides (between the end and its reply)."""
        self.send(b".\r\n")
        if meanwhile is not None:
            meanwhile()
        code, reply = self.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)

    def sendmail(self, from_addr, to_addrs, msg, mail_options=(), rcpt_options=()):
        if mail_options or rcpt_options or not isinstance(msg, bytes):
            return super().sendmail(from_addr, to_addrs, msg, mail_options, rcpt_options)
        refused = self.stage(from_addr, [to_addrs] if isinstance(to_addrs, str) else list(to_addrs), msg)
        self.finish()
        return refused

    def abandon(self) -> None:
        """Drop the connection without ending a staged message, so that the server discards it."""
        if self.sock is not None:
            try:
                # Wakes a thread blocked reading this socket, which close() alone may not.
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.close()


class PipeliningSMTP_SSL(PipeliningSMTP, smtplib.SMTP_SSL):
    pass


class SMTPEmailBackend(DjangoSMTPBackend):
    """Django's SMTP backend, over connections that pipeline MAIL, RCPT and
    DATA where the server offers PIPELINING (and send them one by one where it
    does not). Beyond ``send_messages`` it offers the outbox ``stage_bytes`` /
    ``finish``: a message sent all but its end, and ended later."""

    @property
    def connection_class(self):
        return PipeliningSMTP_SSL if self.use_ssl else PipeliningSMTP

    connection: PipeliningSMTP | None

    def stage_bytes(self, from_email: str, recipients: list[str], data: bytes) -> None:
        self.open()
        assert self.connection is not None
        self.connection.stage(from_email, recipients, data)

    def finish(self, meanwhile: Callable[[], object] | None = None) -> None:
        assert self.connection is not None
        self.connection.finish(meanwhile)

    def abandon(self) -> None:
        """Close without ending a message in progress (QUIT would end up inside its content)."""
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.abandon()
            except OSError:
                pass


# --- rate limit ----------------------------------------------------------------------------------------


class RateLimiter:
    """At most ``rate`` permits in each second of the clock, counted in the
    cache: every sender that shares the cache (all threads, and all processes
    with a shared cache such as Redis) shares the limit. ``acquire`` waits for
    the next second when this one is used up. ``clock`` and ``sleep`` are
    injectable so that a test can count the decisions without waiting."""

    def __init__(self, rate: int, *, key: str = "email-rate", cache=None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep):
        self.rate, self.key, self.cache, self.clock, self.sleep = rate, key, cache or default_cache, clock, sleep

    def acquire(self) -> None:
        while True:
            now = self.clock()
            second = int(now)
            key = f"{self.key}:{second}"
            self.cache.add(key, 0, timeout=10)
            try:
                used = self.cache.incr(key)
            except ValueError:  # expired between add and incr: count again
                continue
            if used <= self.rate:
                return
            self.sleep(second + 1 - now)


# --- message templates ----------------------------------------------------------------------------------

_TOKEN = "q7Xm"  # noqa: S105 (not a secret: makes the markers below unlikely in any real text)
TO_MARK = f"to-{_TOKEN}@marker.invalid"
MESSAGE_ID_MARK = f"<id-{_TOKEN}@marker.invalid>"
DATE_MARK = f"date-{_TOKEN}"
# SMTP's limit on a line (RFC 5321 4.5.3.1.6), with room for the CRLF.
_LINE_LIMIT = 998


class MessageTemplate:
    """One message with blanks, built once by Django's email classes (so its
    headers, parts and encodings are exactly Django's) and then filled per
    recipient by replacing markers in its bytes: a 100,000-recipient mailing
    builds one MIME tree, not 100,000.

    ``build(marks)`` makes the EmailMessage with ``marks[name]`` where each
    value goes; ``fill`` returns the bytes with the values in, or None when a
    value does not fit as plain bytes (a non-ASCII address, a line that would
    grow too long, a part Django encoded): the caller then builds that message
    the ordinary way."""

    def __init__(self, build: Callable[[dict[str, str]], EmailMessage], names: Iterable[str]):
        self.marks = {name: f"@@{name}-{_TOKEN}@@" for name in names}
        message = build(self.marks)
        message.to = [TO_MARK]
        message.extra_headers = {**message.extra_headers, "Message-ID": MESSAGE_ID_MARK, "Date": DATE_MARK}
        self.data = message.message().as_bytes(linesep="\r\n")
        self.usable = (
            all(self.data.count(mark.encode()) == 1 for mark in (TO_MARK, MESSAGE_ID_MARK, DATE_MARK))
            and b"Content-Transfer-Encoding: quoted-printable" not in self.data
            and b"Content-Transfer-Encoding: base64" not in self.data
        )
        # What a line with blanks may grow to: its length and how many blanks it holds.
        marked = [line for line in self.data.split(b"\r\n") if _TOKEN.encode() in line]
        self._longest = max(map(len, marked), default=0)
        self._most = max((line.count(_TOKEN.encode()) for line in marked), default=0)
        self._date = ("", 0)

    def fill(self, *, to: str, message_id: str, values: dict[str, str]) -> bytes | None:
        if not self.usable or not to.isascii() or len(to) > 320:
            return None
        data = self.data
        text = {name: value for name, value in values.items()}
        # A value may not break a line, hold a marker, or look like the MIME boundary ("===…").
        if any("\r" in v or "\n" in v or _TOKEN in v or "=====" in v for v in (to, *text.values())):
            return None
        widest = max(len(v.encode()) for v in (to, *text.values()))
        if self._longest + self._most * widest >= _LINE_LIMIT:
            return None
        if not all(v.isascii() for v in text.values()):
            # Django declares an ASCII part 7bit; with UTF-8 text in it, it is 8bit (as Django would declare it).
            data = data.replace(b"Content-Transfer-Encoding: 7bit", b"Content-Transfer-Encoding: 8bit")
        for name, value in text.items():
            data = data.replace(self.marks[name].encode(), value.encode())
        return (
            data.replace(TO_MARK.encode(), to.encode(), 1)
            .replace(MESSAGE_ID_MARK.encode(), message_id.encode(), 1)
            .replace(DATE_MARK.encode(), self._now().encode(), 1)
        )

    def _now(self) -> str:
        second = int(time.time())
        if self._date[1] != second:
            self._date = (formatdate(second, localtime=settings.EMAIL_USE_LOCALTIME), second)
        return self._date[0]

