"""The consistency check of the enrollment counters (``enrollments/counters.py``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction

from .. import counters

logger = logging.getLogger(__name__)


@dataclass
class CountsDrift:
    """Where the stored counters differ from a fresh count, as differences
    (fresh minus stored): ``modes`` as (course id, mode, active, inactive),
    ``days`` as (course id, day, new, active), ``ended`` as (course id, day,
    ended), the ends recounted from the audit trail. Empty when they agree."""

    modes: list[tuple] = field(default_factory=list)
    days: list[tuple] = field(default_factory=list)
    ended: list[tuple] = field(default_factory=list)
    fixed: bool = False

    def __bool__(self) -> bool:
        return bool(self.modes or self.days or self.ended)

    @property
    def courses(self) -> list[int]:
        return sorted({row[0] for rows in (self.modes, self.days, self.ended) for row in rows})

    def summary(self) -> str:
        if not self:
            return "The enrollment counters agree with a fresh count."
        state = "Fixed" if self.fixed else "Not fixed (run with --fix)"
        return (
            f"The enrollment counters drifted in {len(self.courses):,} course(s) "
            f"({len(self.modes):,} mode row(s), {len(self.days):,} day row(s), {len(self.ended):,} day(s) of ends). {state}."
        )


@transaction.atomic
def enrollment_counts_check(*, fix: bool = False) -> CountsDrift:
    """Recount every course's enrollments set-based (two grouped queries over
    ``Enrollment``, each one snapshot) and its ends per day (one over the
    audit trail: the only record of an event the rows no longer show; see
    ``counters.ended_drift_sql``) and compare with the counters; log a
    warning per drift found. With ``fix``, first re-install the triggers (with
    today's ``TIME_ZONE``, which the per-day counters follow), then add each
    difference to the counters in one statement per kind of count, which is right
    even while others write (see ``counters.fix_sql``). Returns the drift found."""
    vendor, tz = connection.vendor, settings.TIME_ZONE
    if fix:
        counters.run(counters.install_sql(vendor, tz))
    modes_sql, days_sql = counters.drift_sql(vendor, tz)
    with connection.cursor() as cursor:
        cursor.execute(modes_sql)
        modes = [tuple(row) for row in cursor.fetchall()]
        cursor.execute(days_sql)
        days = [tuple(row) for row in cursor.fetchall()]
        cursor.execute(counters.ended_drift_sql(vendor, tz))
        ended = [tuple(row) for row in cursor.fetchall()]
    drift = CountsDrift(modes=modes, days=days, ended=ended)
    if drift:
        if fix:
            counters.run(counters.fix_sql(vendor, tz))
            drift.fixed = True
        logger.warning("%s Courses: %s", drift.summary(), ", ".join(map(str, drift.courses[:50])))
    return drift
