"""The texts of enrollment emails, as outbox rows (sent later by a task).

A batch renders each kind of message once per course (and reason), in a plain
text and an HTML part, with markers where the recipient's address and greeting
go, and fills the markers per recipient: ten thousand recipients cost one pair
of template renders per kind (and language), not ten thousand. Links are
absolute, from ``SITE_URL``: a worker has no request to take the host from.

Every message is in its recipient's language, with dates in their time zone
(``recipient_locales``): an account's own language when the site ships it,
else the site's; an address with no account (an invitation to register) gets
the course's language (``Course.language``, blank for the site's). The
subject and the body are rendered under that language when the message is
sent; the subject kept on the row is the site's language, for the admin."""

import functools
import re
import uuid
import zoneinfo
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape, format_html
from django.utils.translation import gettext as _

from courses.models import Course
from enrollment_site.lib.emails import email_key
from enrollment_site.lib.mail import MessageTemplate
from enrollment_site.lib.stored_texts import shown

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
    """The salutation, in the active language: the name the row carries (the
    account's display name), or a plain hello for someone without an account."""
    return _("Dear %(name)s,") % {"name": name} if name else _("Hello,")


@dataclass(frozen=True)
class Locale:
    """The language and time zone one recipient's messages are written in."""

    language: str
    time_zone: str


def shipped_language(code: str) -> str:
    """``code`` as a language the site ships ("fr-ca" gives "fr"), or "" when it ships none of it."""
    if not code:
        return ""
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return ""


def _zone(name: str) -> str:
    """``name`` when it is a time zone this machine knows, else the site's."""
    if name:
        try:
            zoneinfo.ZoneInfo(name)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            return settings.TIME_ZONE
        return name
    return settings.TIME_ZONE


def user_locale(user) -> Locale:
    """The locale of a person with an account: their own language and time
    zone when set (and known), else the site's. A course's language is never
    theirs: it is for addresses with no account."""
    # ``time_zone`` through getattr: the field arrives with accounts' own change.
    return Locale(shipped_language(user.language) or settings.LANGUAGE_CODE, _zone(getattr(user, "time_zone", "") or ""))


def address_locale(course: Course | None) -> Locale:
    """The locale of an address with no account: the course's language (blank: the site's), the site's time zone."""
    return Locale(shipped_language(course.language if course is not None else "") or settings.LANGUAGE_CODE, settings.TIME_ZONE)


def locale_fields() -> tuple[str, ...]:
    """The user fields ``user_locale`` reads, for ``only()``: a field deferred
    there would cost a query per recipient."""
    if any(f.name == "time_zone" for f in get_user_model()._meta.get_fields()):
        return ("language", "time_zone")
    return ("language",)


def recipient_locales(notes: Iterable[Notification]) -> dict[int, Locale]:
    """The locale of each message (by id), in one query for all: the account
    whose address it is sent to (``user_locale``), else its course's
    (``address_locale``)."""
    notes = list(notes)
    keys = {n.recipient_key for n in notes}
    accounts: dict[str, Locale] = {}
    if keys:
        fields = ["email_key", *locale_fields()]
        for user in get_user_model().objects.filter(email_key__in=keys).only(*fields).order_by("pk"):
            accounts.setdefault(user.email_key, user_locale(user))
    return {n.pk: accounts.get(n.recipient_key) or address_locale(n.course) for n in notes}


@contextmanager
def in_locale(locale: Locale) -> Iterator[None]:
    """Render (texts, dates, numbers) in ``locale``."""
    with translation.override(locale.language), timezone.override(locale.time_zone):
        yield


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
        # The access line is in the recipient's time zone already; the texts around it in their language.
        key = (kind, auto_enroll, reason, access, translation.get_language())
        if key not in self._bodies:
            context = {
                "course": self.course, "email": _EMAIL_MARK, "greeting": _GREETING_MARK, "auto_enroll": auto_enroll,
                # A reason the system wrote (stored in English) in the recipient's language; a person's as typed.
                "reason": shown(reason), "site_name": settings.SITE_NAME, "access": access, **self.links,
                # The name and the access in bold in the HTML part, outside the translated sentences.
                "course_strong": format_html("<strong>{}</strong>", self.course.display_name),
                "access_strong": format_html("<strong>{}</strong>", access),
            }
            self._bodies[key] = (
                render_to_string(f"enrollments/email/{kind}.txt", context),
                render_to_string(f"enrollments/email/{kind}.html", context),
            )
        return self._bodies[key]

    def render(self, note: Notification) -> RenderedMessage:
        """The plain text and HTML parts of an outbox message, rendered at send
        time in the active language and time zone (``in_locale``)."""
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
            subject=self.subject_of(note), body=rendered.text, from_email=settings.DEFAULT_FROM_EMAIL, to=[note.recipient],
            connection=connection, headers={"Message-ID": message_id},
        )
        if rendered.html is not None:
            message.attach_alternative(rendered.html, "text/html")
        return message

    def message_bytes(self, note: Notification, *, message_id: str) -> bytes:
        """The same message as the bytes SMTP sends. Built once per (kind,
        invitation's auto enroll, reason, access, language) of the course and
        filled per recipient; a recipient the filled template cannot carry (an
        address that is not ASCII, say) gets it built the ordinary way."""
        if not note.body:
            auto_enroll = note.auto_enroll if note.kind == Notification.Kind.ALLOWED else False
            key = (note.kind, auto_enroll, note.reason, translation.get_language(), access_of(note))
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
        subject = self.subject_of(note)

        def build(marks: dict[str, str]) -> EmailMultiAlternatives:
            message = EmailMultiAlternatives(
                subject=subject, from_email=settings.DEFAULT_FROM_EMAIL,
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
        """The subject of a message of ``kind`` (a ``Notification.Kind``) about
        this course, in the active language, safe for a header."""
        subjects: dict[str, str] = {
            Notification.Kind.ENROLLED: _("You have been enrolled in %(course)s"),
            Notification.Kind.ALLOWED: _("You have been invited to register for %(course)s"),
            Notification.Kind.UNENROLLED: _("You have been unenrolled from %(course)s"),
            Notification.Kind.ALLOWANCE_REMOVED: _("Your invitation to %(course)s was withdrawn"),
            Notification.Kind.EXPIRED: _("Your access to %(course)s has ended"),
            Notification.Kind.RENEWED: _("Your access to %(course)s has been renewed"),
            Notification.Kind.EXPIRING: _("Your access to %(course)s ends soon"),
            Notification.Kind.EXPIRING_TEAM: _("Access to %(course)s ends soon for some learners"),
        }
        return _subject(subjects[kind] % {"course": self.course.display_name})

    def subject_of(self, note: Notification) -> str:
        """The subject ``note`` goes out with: a message rendered at send time
        gets it in the active language; one written out in full, its own."""
        return note.subject if note.body else self.subject(note.kind)

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
    (``body``, and its subject) when the row is written. Rendered per
    recipient, in the recipient's language and time zone (``user_locale``),
    with the template rendered once per course, kind, date, language and zone
    and filled per recipient, as ``MessageBuilder`` does."""

    def __init__(self):
        self._builders: dict[int, MessageBuilder] = {}
        self._texts: dict[tuple, tuple[str, str]] = {}

    def builder(self, course: Course) -> MessageBuilder:
        if course.pk not in self._builders:
            self._builders[course.pk] = MessageBuilder(course)
        return self._builders[course.pk]

    def text(self, kind: str, *, course: Course, locale: Locale, **context) -> tuple[str, str]:
        """The subject and the body of a ``kind`` message in ``locale``, the
        body's greeting and address to fill in. Dates in ``context`` (aware
        datetimes) are shown in the locale's time zone."""
        key = (kind, course.pk, locale, tuple(sorted((k, str(v)) for k, v in context.items())))
        if key not in self._texts:
            with in_locale(locale):
                self._texts[key] = (self.builder(course).subject(kind), render_to_string(f"enrollments/email/{kind}.txt", {
                    "course": course, "email": _EMAIL_MARK, "greeting": _GREETING_MARK, "site_name": settings.SITE_NAME,
                    **self.builder(course).links, **context,
                }))
        return self._texts[key]

    def row(self, kind: str, *, course: Course, user, until, operation_id: uuid.UUID, now, **context) -> dict:
        """An outbox row of ``kind`` to ``user`` about ``course``, whose access ends at ``until``."""
        locale = user_locale(user)
        # The day access ends, in the recipient's zone: the cache key is the day, not the moment.
        day = timezone.localtime(until, zoneinfo.ZoneInfo(locale.time_zone)).date()
        subject, body = self.text(kind, course=course, locale=locale, until=day, **context)
        name = user.display_name
        with translation.override(locale.language):
            hello = greeting(name)
        return {
            "operation_id": operation_id, "kind": kind, "recipient": user.email, "recipient_key": email_key(user.email),
            "subject": subject, "name": name[:150], "reason": "", "auto_enroll": False,
            "body": body.replace(_EMAIL_MARK, user.email).replace(_GREETING_MARK, hello),
            "course_id": course.pk, "created": now,
        }
