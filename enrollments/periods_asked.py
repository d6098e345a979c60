"""A period as asked for, kept and shown: a ``PeriodRequest`` as JSON (on a
queued job or a kept preview, so that a worker and a Confirm apply what was
asked), from the columns of an invitation, and in words for the pages, the
emails and the API. Pure functions: no queries.

Dates are shown in the active time zone (the site's, ``TIME_ZONE``, unless a
recipient's own is active for an email) and name it, so that "until 31 Dec
2026 23:59 (UTC)" reads the same on every page; words and month names are in
the active language.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .periods import Period, PeriodRequest, period_request

if TYPE_CHECKING:
    from courses.models import Course

PERIOD_FIELDS = ("access_from", "access_until", "duration_days")


def asked_json(asked: PeriodRequest | None) -> dict[str, Any]:
    """The request as JSON: only the fields given, dates in ISO form; {} for none."""
    if asked is None:
        return {}
    data: dict[str, Any] = {}
    if asked.access_from is not None:
        data["access_from"] = asked.access_from.isoformat()
    if asked.access_until is not None:
        data["access_until"] = asked.access_until.isoformat()
    if asked.duration_days is not None:
        data["duration_days"] = asked.duration_days
    return data


def asked_from_json(data: dict[str, Any] | None) -> PeriodRequest:
    """The request ``asked_json`` wrote (checked again, as anything read back is)."""
    return period_request(**{name: value for name, value in (data or {}).items() if name in PERIOD_FIELDS})


def asked_of(row: Any) -> PeriodRequest:
    """The request a row carries in ``access_from``/``access_until``/``duration_days``
    (an invitation): what it was given, already checked when it was written."""
    return PeriodRequest(
        access_from=getattr(row, "access_from", None), access_until=getattr(row, "access_until", None),
        duration_days=getattr(row, "duration_days", None),
    )


def moment_shown(moment: datetime.datetime) -> str:
    """``31 Dec 2026 23:59 (UTC)``: the active time zone, named; the month in the active language."""
    local = timezone.localtime(moment)
    return f"{date_format(local, 'j M Y H:i')} ({local.tzname() or timezone.get_current_timezone_name()})"


def period_shown(period: Period) -> str:
    """A period in words: "until …", "from …", "from … until …", or "no end"."""
    if period.access_from is not None and period.access_until is not None:
        return _("from %(start)s until %(end)s") % {"start": moment_shown(period.access_from), "end": moment_shown(period.access_until)}
    if period.access_until is not None:
        return _("until %(end)s") % {"end": moment_shown(period.access_until)}
    if period.access_from is not None:
        return _("from %(start)s") % {"start": moment_shown(period.access_from)}
    return _("no end")


def days_shown(days: int) -> str:
    return ngettext("%(n)s day", "%(n)s days", days) % {"n": number_format(days, force_grouping=True)}


def asked_shown(asked: PeriodRequest) -> str:
    """What was asked, in words ("until …", "30 days from enrolling", "from … for 30 days")."""
    if asked.duration_days is not None:
        days = days_shown(asked.duration_days)
        if asked.access_from is not None:
            return _("from %(start)s for %(days)s") % {"start": moment_shown(asked.access_from), "days": days}
        return _("%(days)s from enrolling") % {"days": days}
    return period_shown(Period(asked.access_from, asked.access_until))


def course_default_shown(course: Course) -> str:
    """The course's default period in words ("" when it has none)."""
    parts = []
    if course.default_duration_days:
        parts.append(_("%(days)s from enrolling") % {"days": days_shown(course.default_duration_days)})
    if course.default_access_until:
        parts.append(_("until %(end)s at the latest") % {"end": moment_shown(course.default_access_until)})
    return ", ".join(parts)


def access_line(asked: PeriodRequest, course: Course) -> str:
    """The summary line of a batch's results: the period given, else the course's default, else ""."""
    if not asked.empty:
        return _("Access: %(period)s") % {"period": asked_shown(asked)}
    default = course_default_shown(course)
    return _("Access: the course's default, %(period)s") % {"period": default} if default else ""


def period_api(period: Period) -> dict[str, str | None]:
    """``access_from`` and ``access_until`` as the API answers them: ISO strings or null."""
    return {
        "access_from": period.access_from.isoformat() if period.access_from else None,
        "access_until": period.access_until.isoformat() if period.access_until else None,
    }
