"""The texts of enrollment emails, as outbox rows (sent later by a task).

A batch renders each kind of message once per course, with markers where the
recipient's address and name go, and fills the markers per recipient: ten
thousand recipients cost one template render per kind, not ten thousand."""

import functools
import re
import uuid

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from courses.models import Course

from .models import Notification

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_EMAIL_MARK = "\x00EMAIL\x00"
_NAME_MARK = "\x00NAME\x00"


@functools.lru_cache(maxsize=256)
def _subject(text: str) -> str:
    # Course names are user text: no CR/LF may reach a header.
    return _CONTROL.sub(" ", text).strip()[:255]


class MessageBuilder:
    """Builds outbox rows for one course, caching the rendered templates."""

    def __init__(self, course: Course):
        self.course = course
        base = settings.SITE_URL.rstrip("/")
        self.links = {
            "course_url": base + reverse("course_detail", args=[course.key]),
            "signup_url": base + reverse("account_signup"),
            "dashboard_url": base + reverse("home"),
        }
        self._bodies: dict[tuple, str] = {}
        self.now = timezone.now()

    def _template(self, kind: str, auto_enroll: bool) -> str:
        key = (kind, auto_enroll)
        if key not in self._bodies:
            context = {"course": self.course, "email": _EMAIL_MARK, "name": _NAME_MARK, "auto_enroll": auto_enroll, **self.links}
            self._bodies[key] = render_to_string(f"enrollments/email/{kind}.txt", context)
        return self._bodies[key]

    def body(self, note: Notification) -> str:
        """The text of an outbox message, rendered at send time."""
        if note.body:
            return note.body
        template = self._template(note.kind, note.auto_enroll if note.kind == Notification.Kind.ALLOWED else False)
        return template.replace(_EMAIL_MARK, note.recipient).replace(_NAME_MARK, note.name or "learner")

    def _row(self, *, kind, email, subject, operation_id: uuid.UUID, name="", auto_enroll=False) -> dict:
        """An outbox row, as field values for ``bulk_insert``."""
        return {
            "operation_id": operation_id, "kind": kind, "recipient": email, "recipient_key": email.lower(),
            "subject": _subject(subject), "body": "", "name": name[:150], "auto_enroll": auto_enroll,
            "course_id": self.course.pk, "created": self.now,
        }

    def enrolled(self, *, email, operation_id, name=""):
        return self._row(kind=Notification.Kind.ENROLLED, email=email, operation_id=operation_id, name=name,
                         subject=f"You have been enrolled in {self.course.display_name}")

    def allowed(self, *, email, auto_enroll, operation_id):
        return self._row(kind=Notification.Kind.ALLOWED, email=email, operation_id=operation_id, auto_enroll=auto_enroll,
                         subject=f"You have been invited to register for {self.course.display_name}")

    def unenrolled(self, *, email, operation_id):
        return self._row(kind=Notification.Kind.UNENROLLED, email=email, operation_id=operation_id,
                         subject=f"You have been unenrolled from {self.course.display_name}")

    def allowance_removed(self, *, email, operation_id):
        return self._row(kind=Notification.Kind.ALLOWANCE_REMOVED, email=email, operation_id=operation_id,
                         subject=f"Your invitation to {self.course.display_name} was withdrawn")
