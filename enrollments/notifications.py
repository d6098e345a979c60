"""The texts of enrollment emails, as outbox rows (sent later by a task).

A batch renders each kind of message once per course (and reason), in a plain
text and an HTML part, with markers where the recipient's address and greeting
go, and fills the markers per recipient: ten thousand recipients cost one pair
of template renders per kind, not ten thousand. Links are absolute, from
``SITE_URL``: a worker has no request to take the host from."""

import functools
import re
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape

from courses.models import Course
from enrollment_site.lib.emails import email_key
from enrollment_site.lib.mail import MessageTemplate

from .models import Notification
from .periods import Period, PeriodRequest
from .periods_asked import asked_shown, period_shown

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_EMAIL_MARK = "\x00EMAIL\x00"
_GREETING_MARK = "\x00GREETING\x00"


@functools.lru_cache(maxsize=256)
def _subject(text: str) -> str:
    # Course names are user text: no CR/LF may reach a header.
    return _CONTROL.sub(" ", text).strip()[:255]


def greeting(name: str) -> str:
    """The salutation: the name the row carries (the account's display name),
    or a plain hello for someone without an account."""
    return f"Dear {name}," if name else "Hello,"


def access_of(note: Notification) -> str:
    """The period a message tells of, in words ("" for none): an enrollment's
    bounds, or what an invitation will give once the person enrolls."""
    if note.kind == Notification.Kind.ALLOWED:
        asked = PeriodRequest(note.access_from, note.access_until, note.duration_days)
        return "" if asked.empty else asked_shown(asked)
    period = Period(note.access_from, note.access_until)
    return period_shown(period) if period.bounded else ""


@dataclass(frozen=True)
class RenderedMessage:
    text: str
    html: str | None = None


class MessageBuilder:
    """Builds outbox rows for one course, caching the rendered templates."""

    def __init__(self, course: Course):
        self.course = course
        base = settings.SITE_URL.rstrip("/")
        self.links = {
            "course_url": base + reverse("course_detail", args=[course.key]),
            "signup_url": base + reverse("account_signup"),
            "dashboard_url": base + reverse("home"),
            "site_url": base + "/",
        }
        self._bodies: dict[tuple, tuple[str, str]] = {}
        self._messages: dict[tuple, MessageTemplate] = {}
        self.now = timezone.now()

    def _templates(self, kind: str, auto_enroll: bool, reason: str, access: str = "") -> tuple[str, str]:
        key = (kind, auto_enroll, reason, access)
        if key not in self._bodies:
            context = {
                "course": self.course, "email": _EMAIL_MARK, "greeting": _GREETING_MARK, "auto_enroll": auto_enroll,
                "reason": reason, "site_name": settings.SITE_NAME, "access": access, **self.links,
            }
            self._bodies[key] = (
                render_to_string(f"enrollments/email/{kind}.txt", context),
                render_to_string(f"enrollments/email/{kind}.html", context),
            )
        return self._bodies[key]

    def render(self, note: Notification) -> RenderedMessage:
        """The plain text and HTML parts of an outbox message, rendered at send time."""
        if note.body:
            return RenderedMessage(note.body)
        text, html = self._templates(note.kind, note.auto_enroll if note.kind == Notification.Kind.ALLOWED else False, note.reason, access_of(note))
        hello = greeting(note.name)
        return RenderedMessage(
            text=text.replace(_EMAIL_MARK, note.recipient).replace(_GREETING_MARK, hello),
            # The HTML template escaped everything it rendered; what goes in here is escaped too.
            html=html.replace(_EMAIL_MARK, escape(note.recipient)).replace(_GREETING_MARK, escape(hello)),
        )

    def message(self, note: Notification, *, message_id: str, connection=None) -> EmailMultiAlternatives:
        """The outbox message as an EmailMessage, built the ordinary way (for any backend)."""
        rendered = self.render(note)
        message = EmailMultiAlternatives(
            subject=note.subject, body=rendered.text, from_email=settings.DEFAULT_FROM_EMAIL, to=[note.recipient],
            connection=connection, headers={"Message-ID": message_id},
        )
        if rendered.html is not None:
            message.attach_alternative(rendered.html, "text/html")
        return message

    def message_bytes(self, note: Notification, *, message_id: str) -> bytes:
        """The same message as the bytes SMTP sends. Built once per (kind,
        invitation's auto enroll, reason, subject, language) of the course and
        filled per recipient; a recipient the filled template cannot carry (an
        address that is not ASCII, say) gets it built the ordinary way."""
        if not note.body:
            auto_enroll = note.auto_enroll if note.kind == Notification.Kind.ALLOWED else False
            key = (note.kind, auto_enroll, note.reason, note.subject, translation.get_language(), access_of(note))
            template = self._messages.get(key)
            if template is None:
                template = self._messages[key] = self._message_template(note, auto_enroll)
            hello = greeting(note.name)
            data = template.fill(to=note.recipient, message_id=message_id, values={
                "email": note.recipient, "email_html": escape(note.recipient), "greeting": hello, "greeting_html": escape(hello),
            })
            if data is not None:
                return data
        return self.message(note, message_id=message_id).message().as_bytes(linesep="\r\n")

    def _message_template(self, note: Notification, auto_enroll: bool) -> MessageTemplate:
        text, html = self._templates(note.kind, auto_enroll, note.reason, access_of(note))

        def build(marks: dict[str, str]) -> EmailMultiAlternatives:
            message = EmailMultiAlternatives(
                subject=note.subject, from_email=settings.DEFAULT_FROM_EMAIL,
                body=text.replace(_EMAIL_MARK, marks["email"]).replace(_GREETING_MARK, marks["greeting"]),
            )
            message.attach_alternative(html.replace(_EMAIL_MARK, marks["email_html"]).replace(_GREETING_MARK, marks["greeting_html"]), "text/html")
            return message

        return MessageTemplate(build, ("email", "email_html", "greeting", "greeting_html"))

    def _row(self, *, kind, email, subject, operation_id: uuid.UUID, name="", auto_enroll=False, reason="") -> dict:
        """An outbox row, as field values for ``bulk_insert``."""
        return {
            "operation_id": operation_id, "kind": kind, "recipient": email, "recipient_key": email_key(email),
            "subject": _subject(subject), "body": "", "name": name[:150], "auto_enroll": auto_enroll,
            "reason": reason, "course_id": self.course.pk, "created": self.now,
        }

    def subject(self, kind: str) -> str:
        """The subject of a message of ``kind`` (a ``Notification.Kind``) about this course, safe for a header."""
        name = self.course.display_name
        subjects: dict[str, str] = {
            Notification.Kind.ENROLLED: f"You have been enrolled in {name}",
            Notification.Kind.ALLOWED: f"You have been invited to register for {name}",
            Notification.Kind.UNENROLLED: f"You have been unenrolled from {name}",
            Notification.Kind.ALLOWANCE_REMOVED: f"Your invitation to {name} was withdrawn",
            Notification.Kind.EXPIRED: f"Your access to {name} has ended",
            Notification.Kind.RENEWED: f"Your access to {name} has been renewed",
            Notification.Kind.EXPIRING: f"Your access to {name} ends soon",
            Notification.Kind.EXPIRING_TEAM: f"Access to {name} ends soon for some learners",
        }
        return _subject(subjects[kind])

    def enrolled(self, *, email, operation_id, name="", reason=""):
        return self._row(kind=Notification.Kind.ENROLLED, email=email, operation_id=operation_id, name=name, reason=reason,
                         subject=self.subject(Notification.Kind.ENROLLED))

    def allowed(self, *, email, auto_enroll, operation_id, reason=""):
        return self._row(kind=Notification.Kind.ALLOWED, email=email, operation_id=operation_id, auto_enroll=auto_enroll, reason=reason,
                         subject=self.subject(Notification.Kind.ALLOWED))

    def unenrolled(self, *, email, operation_id, name="", reason=""):
        return self._row(kind=Notification.Kind.UNENROLLED, email=email, operation_id=operation_id, name=name, reason=reason,
                         subject=self.subject(Notification.Kind.UNENROLLED))

    def expired(self, *, email, operation_id, name=""):
        return self._row(kind=Notification.Kind.EXPIRED, email=email, operation_id=operation_id, name=name,
                         subject=self.subject(Notification.Kind.EXPIRED))

    def allowance_removed(self, *, email, operation_id, name="", reason=""):
        return self._row(kind=Notification.Kind.ALLOWANCE_REMOVED, email=email, operation_id=operation_id, name=name, reason=reason,
                         subject=self.subject(Notification.Kind.ALLOWANCE_REMOVED))


class PeriodMessages:
    """Outbox rows about a period of access whose text names a date (a renewal,
    a reminder, the course team's summary), so it is written out in full
    (``body``) when the row is written. Rendered per recipient, in the
    recipient's language (``User.language``; English until translations
    exist), with the template rendered once per course, kind, date and
    language and filled per recipient, as ``MessageBuilder`` does."""

    def __init__(self):
        self._builders: dict[int, MessageBuilder] = {}
        self._texts: dict[tuple, str] = {}

    def builder(self, course: Course) -> MessageBuilder:
        if course.pk not in self._builders:
            self._builders[course.pk] = MessageBuilder(course)
        return self._builders[course.pk]

    def text(self, kind: str, *, course: Course, language: str, **context) -> str:
        """The body of a ``kind`` message, the greeting and address to fill in."""
        key = (kind, course.pk, language, tuple(sorted((k, str(v)) for k, v in context.items())))
        if key not in self._texts:
            with translation.override(language or settings.LANGUAGE_CODE):
                self._texts[key] = render_to_string(f"enrollments/email/{kind}.txt", {
                    "course": course, "email": _EMAIL_MARK, "greeting": _GREETING_MARK, "site_name": settings.SITE_NAME,
                    **self.builder(course).links, **context,
                })
        return self._texts[key]

    def row(self, kind: str, *, course: Course, user, until, operation_id: uuid.UUID, now, **context) -> dict:
        """An outbox row of ``kind`` to ``user`` about ``course``, whose access ends at ``until``."""
        body = self.text(kind, course=course, language=getattr(user, "language", ""), until=timezone.localtime(until).date(), **context)
        name = user.display_name
        return {
            "operation_id": operation_id, "kind": kind, "recipient": user.email, "recipient_key": email_key(user.email),
            "subject": self.builder(course).subject(kind), "name": name[:150], "reason": "", "auto_enroll": False,
            "body": body.replace(_EMAIL_MARK, user.email).replace(_GREETING_MARK, greeting(name)),
            "course_id": course.pk, "created": now,
        }
