"""Filters that show a period of access in words, in the site's time zone (``periods_asked``)."""

from django import template
from django.utils import timezone
from django.utils.translation import gettext as _

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
        return _("Your access ended on %(when)s.") % {"when": moment_shown(enrollment.access_until)}
    starts = state == UPCOMING
    ends = enrollment.access_until is not None
    if starts and ends:
        return _("Access from %(start)s; Access until %(end)s.") % {
            "start": moment_shown(enrollment.access_from), "end": moment_shown(enrollment.access_until),
        }
    if starts:
        return _("Access from %(start)s.") % {"start": moment_shown(enrollment.access_from)}
    if ends:
        return _("Access until %(end)s.") % {"end": moment_shown(enrollment.access_until)}
    return ""


@register.filter
def course_default_period(course) -> str:
    """The course's default period in words ("" when it has none)."""
    return course_default_shown(course)
