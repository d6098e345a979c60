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
    ``days`` as (course id, day, new, active). Empty when they agree."""

    modes: list[tuple] = field(default_factory=list)
    days: list[tuple] = field(default_factory=list)
    fixed: bool = False

    def __bool__(self) -> bool:
        return bool(self.modes or self.days)

    @property
    def courses(self) -> list[int]:
        return sorted({row[0] for row in self.modes} | {row[0] for row in self.days})

    def summary(self) -> str:
        if not self:
            return "The enrollment counters agree with a fresh count."
        state = "Fixed" if self.fixed else "Not fixed (run with --fix)"
        return (
            f"The enrollment counters drifted in {len(self.courses):,} course(s) "
            f"({len(self.modes):,} mode row(s), {len(self.days):,} day row(s)). {state}."
        )


@transaction.atomic
def enrollment_counts_check(*, fix: bool = False) -> CountsDrift:
    """Recount every course's enrollments set-based (two grouped queries over
    ``Enrollment``, each one snapshot) and compare with the counters; log a
    warning per drift found. With ``fix``, first re-install the triggers (with
    today's ``TIME_ZONE``, which the per-day counters follow), then add each
    difference to the counters in one statement per table, which is right
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
    drift = CountsDrift(modes=modes, days=days)
    if drift:
        if fix:
            counters.run(counters.fix_sql(vendor, tz))
            drift.fixed = True
        logger.warning("%s Courses: %s", drift.summary(), ", ".join(map(str, drift.courses[:50])))
    return drift
