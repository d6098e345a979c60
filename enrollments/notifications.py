"""The texts of enrollment emails, as outbox rows (sent later by a task)."""

import re
import uuid

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from courses.models import Course

from .models import Notification

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _subject(text: str) -> str:
    # Course names are user text: no CR/LF may reach a header.
    return _CONTROL.sub(" ", text).strip()[:255]


def _links(course: Course) -> dict:
    base = settings.SITE_URL.rstrip("/")
    return {
        "course_url": base + reverse("course_detail", args=[course.key]),
        "signup_url": base + reverse("account_signup"),
        "dashboard_url": base + reverse("home"),
    }


def _row(*, kind, course, email, subject, template, operation_id: uuid.UUID, **extra) -> Notification:
    context = {"course": course, "email": email, **_links(course), **extra}
    return Notification(
        operation_id=operation_id,
        kind=kind,
        recipient=email,
        recipient_key=email.lower(),
        subject=_subject(subject),
        body=render_to_string(f"enrollments/email/{template}.txt", context),
        course=course,
    )


def enrolled(*, course, email, operation_id, name=""):
    return _row(kind=Notification.Kind.ENROLLED, course=course, email=email, operation_id=operation_id, name=name,
                subject=f"You have been enrolled in {course.display_name}", template="enrolled")


def allowed(*, course, email, auto_enroll, operation_id):
    return _row(kind=Notification.Kind.ALLOWED, course=course, email=email, operation_id=operation_id, auto_enroll=auto_enroll,
                subject=f"You have been invited to register for {course.display_name}", template="allowed")


def unenrolled(*, course, email, operation_id):
    return _row(kind=Notification.Kind.UNENROLLED, course=course, email=email, operation_id=operation_id,
                subject=f"You have been unenrolled from {course.display_name}", template="unenrolled")


def allowance_removed(*, course, email, operation_id):
    return _row(kind=Notification.Kind.ALLOWANCE_REMOVED, course=course, email=email, operation_id=operation_id,
                subject=f"Your invitation to {course.display_name} was withdrawn", template="allowance_removed")
