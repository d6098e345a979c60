"""Enrollment periods: what a way in asks for, what the course gives by default,
and what an enrollment's period means now. Pure functions (no queries) shared
by every way in, the API, the pages and the expiry task.

An enrollment may be bounded by ``access_from`` and ``access_until`` (both
optional). *Enrolled* means active and within the period; ``status`` names the
four cases the API and the pages show. A date without a time is read in the
site's time zone (``TIME_ZONE``): ``access_from`` at the start of that day,
``access_until`` at its very end, so that "until 2026-12-31" still shows as the
31st.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db.models import Case, CharField, Q, Value, When
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from courses.models import MAX_DURATION_DAYS

if TYPE_CHECKING:
    from courses.models import Course

ACTIVE, UPCOMING, EXPIRED, INACTIVE = "active", "upcoming", "expired", "inactive"
STATUSES = (ACTIVE, UPCOMING, EXPIRED, INACTIVE)
STATUS_LABELS = {
    ACTIVE: gettext_lazy("Current"), UPCOMING: gettext_lazy("Upcoming"), EXPIRED: gettext_lazy("Expired"), INACTIVE: gettext_lazy("Not enrolled"),
}


@dataclass(frozen=True)
class Period:
    """The bounds an enrollment is given; ``None`` for unbounded on that side."""

    access_from: datetime.datetime | None = None
    access_until: datetime.datetime | None = None

    @property
    def bounded(self) -> bool:
        return self.access_from is not None or self.access_until is not None


UNBOUNDED = Period()


@dataclass(frozen=True)
class PeriodRequest:
    """What a caller asked for: any of a start, an end or a duration in days
    (a duration counts from the start, or from enrolling). Empty means "the
    course's default"; ``unbounded`` (``NO_PERIOD``) means no end at all,
    whatever the course's default."""

    access_from: datetime.datetime | None = None
    access_until: datetime.datetime | None = None
    duration_days: int | None = None
    unbounded: bool = False

    @property
    def empty(self) -> bool:
        return not self.unbounded and self.access_from is None and self.access_until is None and self.duration_days is None


# Asked by a way in whose enrollments must never expire, such as a course team
# member's own enrollment in their course (``services.team``).
NO_PERIOD = PeriodRequest(unbounded=True)


# --- reading what was typed -----------------------------------------------------------------


def parse_moment(value: Any, *, field: str, end_of_day: bool = False) -> datetime.datetime | None:
    """``value`` (a datetime, a date, or ISO text of either; blank for none) as an
    aware datetime. A bare date is the start of that day in the site's time
    zone, or its last instant with ``end_of_day``; a naive time is in the site's
    zone too. Raises ``ValidationError({field: ...})`` on anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, datetime.date):
        return _day_bound(value, end_of_day=end_of_day)
    elif isinstance(value, str):
        text = value.strip()
        try:
            day = parse_date(text)
            if day is not None:
                return _day_bound(day, end_of_day=end_of_day)
            parsed = parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise ValidationError({field: _("%(value)s is not a date (use YYYY-MM-DD, or YYYY-MM-DD HH:MM).") % {"value": repr(text)}})
        moment = parsed
    else:
        raise ValidationError({field: _("Give a date as text, YYYY-MM-DD.")})
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _day_bound(day: datetime.date, *, end_of_day: bool) -> datetime.datetime:
    moment = datetime.datetime.combine(day, datetime.time.max if end_of_day else datetime.time.min)
    return timezone.make_aware(moment)


def parse_duration(value: Any, *, field: str = "duration_days") -> int | None:
    """A number of days from 1 to ten years; blank for none."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValidationError({field: _("Give a whole number of days.")})
    try:
        days = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ValidationError({field: _("%(value)s is not a whole number of days.") % {"value": repr(value)}}) from None
    if days < 1 or days > MAX_DURATION_DAYS:
        raise ValidationError({field: _("A duration is from 1 to %(max)s days (ten years).") % {"max": MAX_DURATION_DAYS}})
    return days


def period_request(*, access_from: Any = None, access_until: Any = None, duration_days: Any = None) -> PeriodRequest:
    """What the caller asked for, checked: dates that parse, a duration in range,
    not both an end and a duration, and an end after the start. Raises
    ``ValidationError`` naming the field; nothing else is read or written."""
    request = PeriodRequest(
        access_from=parse_moment(access_from, field="access_from"),
        access_until=parse_moment(access_until, field="access_until", end_of_day=True),
        duration_days=parse_duration(duration_days),
    )
    if request.access_until is not None and request.duration_days is not None:
        raise ValidationError({"duration_days": _("Give an end date or a duration, not both.")})
    if request.access_from is not None and request.access_until is not None and request.access_until <= request.access_from:
        raise ValidationError({"access_until": _("The end of access must come after its start.")})
    return request


# --- deciding the period a way in gives ----------------------------------------------------------


def period_for(course: Course, request: PeriodRequest | None = None, *, now: datetime.datetime) -> Period:
    """The period an enrollment made ``now`` gets: what was asked for, else the
    course's default (a duration from enrolling, a fixed end, or both: the
    earlier end wins). A duration counts from the start when one is given;
    ``NO_PERIOD`` gives no bounds at all."""
    request = request or PeriodRequest()
    if not request.empty:
        start = request.access_from
        if request.duration_days is not None:
            return Period(start, (start or now) + datetime.timedelta(days=request.duration_days))
        return Period(start, request.access_until)
    ends = [course.default_access_until] if course.default_access_until else []
    if course.default_duration_days:
        ends.append(now + datetime.timedelta(days=course.default_duration_days))
    return Period(None, min(ends)) if ends else UNBOUNDED


# --- what a period means now ------------------------------------------------------------------------


def status(*, is_active: bool, access_from: datetime.datetime | None, access_until: datetime.datetime | None, now: datetime.datetime) -> str:
    """``expired`` once the period has ended (whether or not the expiry task has
    run yet, and whatever ended the enrollment), else ``inactive`` (unenrolled),
    ``upcoming`` (active, the period not begun) or ``active`` (enrolled now)."""
    if access_until is not None and access_until <= now:
        return EXPIRED
    if not is_active:
        return INACTIVE
    if access_from is not None and access_from > now:
        return UPCOMING
    return ACTIVE


def enrolled_q(now: datetime.datetime, prefix: str = "") -> Q:
    """Rows enrolled at ``now``: active and within their period."""
    return (
        Q(**{f"{prefix}is_active": True})
        & (Q(**{f"{prefix}access_from__isnull": True}) | Q(**{f"{prefix}access_from__lte": now}))
        & (Q(**{f"{prefix}access_until__isnull": True}) | Q(**{f"{prefix}access_until__gt": now}))
    )


def status_q(value: str, now: datetime.datetime, prefix: str = "") -> Q:
    """The filter for one ``status`` value, matching ``status()`` row for row."""
    ended = Q(**{f"{prefix}access_until__lte": now})
    if value == ACTIVE:
        return enrolled_q(now, prefix)
    if value == UPCOMING:
        return Q(**{f"{prefix}is_active": True, f"{prefix}access_from__gt": now}) & ~ended
    if value == EXPIRED:
        return ended
    if value == INACTIVE:
        return Q(**{f"{prefix}is_active": False}) & (Q(**{f"{prefix}access_until__isnull": True}) | Q(**{f"{prefix}access_until__gt": now}))
    raise ValueError(value)


def status_expression(now: datetime.datetime, prefix: str = "") -> Case:
    """``status()`` as a SQL expression, to annotate a queryset with."""
    return Case(
        When(status_q(EXPIRED, now, prefix), then=Value(EXPIRED)),
        When(Q(**{f"{prefix}is_active": False}), then=Value(INACTIVE)),
        When(Q(**{f"{prefix}access_from__gt": now}), then=Value(UPCOMING)),
        default=Value(ACTIVE),
        output_field=CharField(),
    )


__all__ = [
    "ACTIVE", "EXPIRED", "INACTIVE", "STATUSES", "STATUS_LABELS", "UNBOUNDED", "UPCOMING",
    "Period", "PeriodRequest", "enrolled_q", "parse_duration", "parse_moment", "period_for",
    "period_request", "status", "status_expression", "status_q",
]  # fmt: skip
