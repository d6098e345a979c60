"""Filters that show a period of access in words, in the site's time zone (``periods_asked``)."""

from django import template
from django.utils import timezone

from ..periods import EXPIRED, UPCOMING, status
from ..periods_asked import course_default_shown, moment_shown

register = template.Library()


@register.filter
def moment(value) -> str:
    """``31 Dec 2026 23:59 (UTC)``; "" for none."""
    return moment_shown(value) if value else ""


@register.filter
def access_shown(enrollment) -> str:
    """The learner's own period in a sentence ("" when unbounded): when it
    starts if it has not, when it ends, or that it has ended."""
    if enrollment is None or (enrollment.access_from is None and enrollment.access_until is None):
        return ""
    now = timezone.now()
    state = status(is_active=enrollment.is_active, access_from=enrollment.access_from, access_until=enrollment.access_until, now=now)
    if state == EXPIRED:
        return f"Your access ended on {moment_shown(enrollment.access_until)}."
    parts = []
    if state == UPCOMING:
        parts.append(f"Access from {moment_shown(enrollment.access_from)}")
    if enrollment.access_until is not None:
        parts.append(f"Access until {moment_shown(enrollment.access_until)}")
    return "; ".join(parts) + "." if parts else ""


@register.filter
def course_default_period(course) -> str:
    """The course's default period in words ("" when it has none)."""
    return course_default_shown(course)
