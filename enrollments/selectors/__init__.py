"""Reads of enrollment state for pages, reports and the API."""

from datetime import date, datetime, timedelta

from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet, Sum
from django.utils import timezone

from accounts.rules import is_platform_admin
from courses.models import Course

from .. import periods
from ..models import Allowance, BatchJob, BulkEnrollJob, Enrollment, EnrollmentCount, EnrollmentDayCount
from ..rules import SelfEnrollment, self_enrollment_decide
from .previews import membership_preview_for, membership_preview_renewing, stored_preview  # noqa: F401 (the pages' reads, from one place)


def current_enrollments(*, user, now: datetime | None = None) -> QuerySet[Enrollment]:
    """The learner's Current courses: active enrollments whose period has not
    ended (begun or not), newest first, each with its course and
    ``period_status`` (``active`` or ``upcoming``, as ``periods.status``). One query."""
    now = now or timezone.now()
    return (
        Enrollment.objects.filter(user=user, is_active=True).exclude(periods.status_q(periods.EXPIRED, now))
        .annotate(period_status=periods.status_expression(now)).select_related("course").order_by("-created")
    )


def past_enrollments(*, user, now: datetime | None = None) -> QuerySet[Enrollment]:
    """The learner's Past courses: enrollments whose period has ended (status
    ``expired``, whether or not the expiry task has ended them yet), the latest
    end first, each with its course. One query."""
    return (
        Enrollment.objects.filter(user=user).filter(periods.status_q(periods.EXPIRED, now or timezone.now()))
        .select_related("course").order_by("-access_until", "-id")
    )


def active_counts(*, course_ids) -> dict[int, int]:
    """Active enrollments (team included) per course id, for the ids given
    that have any: one query over the counters (``EnrollmentCount``), a few
    rows per course whatever its size."""
    return dict(
        EnrollmentCount.objects.filter(course_id__in=course_ids).values_list("course_id")
        .annotate(n=Sum("active")).filter(n__gt=0).order_by()
    )


def active_count(*, course: Course) -> int:
    """Active enrollments of one course (team included), from the counters: one query."""
    return active_counts(course_ids=[course.pk]).get(course.pk, 0)


def enrollment_counts(*, course: Course) -> dict:
    """Active enrollments (team included) in total and per mode, every offered
    mode listed even when nobody is in it. One query over the counters."""
    per_mode = dict(EnrollmentCount.objects.filter(course=course, active__gt=0).values_list("mode", "active"))
    modes = {mode: per_mode.get(mode, 0) for mode in course.mode_list}
    for mode, n in per_mode.items():
        modes.setdefault(mode, n)
    return {"total": sum(per_mode.values()), "modes": modes}


# How far ahead Course info looks for ends when the course sends no reminder.
ENDING_SOON_DAYS = 7


def period_counts(*, course: Course, now: datetime | None = None) -> dict:
    """Of the course's active enrollments: how many have not started
    (``upcoming``: ``access_from`` ahead) and how many end within the reminder
    window (``ending``: ``access_until`` in the next ``days``, the course's
    reminder days or ``ENDING_SOON_DAYS``). One query, read through the partial
    indexes on rows with a period (``enrollment_course_upcoming``,
    ``enrollment_course_ends``): it costs what those rows cost, not the course's size."""
    now = now or timezone.now()
    days = course.expiry_reminder_days or ENDING_SOON_DAYS
    upcoming = Q(access_from__gt=now)
    ending = Q(access_until__gt=now, access_until__lte=now + timedelta(days=days))
    counts = Enrollment.objects.filter(Q(course=course, is_active=True) & (upcoming | ending)).aggregate(
        upcoming=Count("id", filter=upcoming), ending=Count("id", filter=ending),
    )
    return {"upcoming": counts["upcoming"], "ending": counts["ending"], "days": days}


def enrollments_over_time(*, course: Course, days: int | None = None, today: date | None = None) -> dict:
    """The Course info chart's data, for the last ``days`` days up to ``today``
    (both in the site's time zone), or from the day before the first
    enrollment when ``days`` is None. Read from the per-day counters
    (``EnrollmentDayCount``), two queries whatever the range or the course's size:
    one sum before the range, one row per day in it.

    - ``new``: per day with any, the enrollments first made that day (also
      those who have left since); days without any are absent, not zero, and
      the chart's time axis keeps their width.
    - ``ended``: per day with any, the enrollments that ended that day (went
      from active to inactive, however long they had run; a later return does
      not take it back); days without any are absent.
    - ``active``: the running total of today's active enrollments by the day
      they were first made, from the total before the range (at ``start``)
      to today's total (at ``end``); it changes only on the days of ``new``.
    - ``new_total``, ``ended_total``: the sums of ``new`` and ``ended``.
    - ``start``, ``end``: the ISO dates the axis spans; ``start`` is None when
      nobody ever enrolled.
    - ``has_data``: False when the range holds nothing to draw (no enrollment
      made or ended in it and none active from before)."""
    today = today or timezone.localdate()
    day_rows = EnrollmentDayCount.objects.filter(course=course).exclude(new=0, ended=0)
    start, total = None, 0
    if days is not None:
        start = today - timedelta(days=days - 1)
        total = day_rows.filter(day__lt=start).aggregate(n=Sum("active"))["n"] or 0
        day_rows = day_rows.filter(day__gte=start)
    baseline = total
    new, ended, active, first_day = [], [], [], None
    sums = {"new_total": 0, "ended_total": 0}
    for day, made, still_active, ends in day_rows.order_by("day").values_list("day", "new", "active", "ended"):
        first_day = first_day or day
        if ends:
            ended.append({"x": day.isoformat(), "y": ends})
            sums["ended_total"] += ends
        if made:
            new.append({"x": day.isoformat(), "y": made})
            sums["new_total"] += made
            total += still_active
            active.append({"x": day.isoformat(), "y": total})
    if start is None and first_day is not None:
        # From nought the day before the first enrollment, so the first step shows.
        start = first_day - timedelta(days=1)
    if not new and not ended and total == 0:
        return {"start": start and start.isoformat(), "end": today.isoformat(), "new": [], "ended": [], "active": [], "has_data": False, **sums}
    assert start is not None  # set by the range or, without one, from the first enrollment
    # The line runs from the start of the axis to today, also through empty days at either end.
    if not active or active[0]["x"] != start.isoformat():
        active.insert(0, {"x": start.isoformat(), "y": baseline})
    if active[-1]["x"] != today.isoformat():
        active.append({"x": today.isoformat(), "y": total})
    return {"start": start.isoformat(), "end": today.isoformat(), "new": new, "ended": ended, "active": active, "has_data": True, **sums}


def self_enrollment_for(*, user, course: Course) -> dict:
    """What the course page needs to offer (or refuse) Enroll to this visitor:
    their enrollment row, if any, and the decision of ``self_enrollment_decide``.
    Three queries at most."""
    enrollment = Enrollment.objects.filter(user=user, course=course).first() if user.is_authenticated else None
    invited = user.is_authenticated and Allowance.objects.filter(course=course, email_key=user.email_key).exists()
    decision = self_enrollment_decide(
        course=course, is_enrolled=bool(enrollment and enrollment.is_active), was_enrolled=enrollment is not None,
        invited=invited, active_count=active_count(course=course) if course.max_enrollments is not None else None, now=timezone.now(),
    )
    return {"enrollment": enrollment, "self_enrollment": decision}


def self_enrollment_by_course(*, user, courses: list[Course]) -> dict[int, SelfEnrollment]:
    """The self-enrollment decision for each course of a list (the catalog),
    by course id, in three queries whatever the number of courses."""
    ids = [c.pk for c in courses]
    mine: dict[int, bool] = {}
    invited: set[int] = set()
    if user.is_authenticated:
        mine = dict(Enrollment.objects.filter(user=user, course_id__in=ids).values_list("course_id", "is_active"))
        invited = set(
            Allowance.objects.filter(course_id__in=ids, email_key=user.email_key).values_list("course_id", flat=True)
        )
    capped = [c.pk for c in courses if c.max_enrollments is not None]
    counts = active_counts(course_ids=capped) if capped else {}
    now = timezone.now()
    return {
        c.pk: self_enrollment_decide(
            course=c, is_enrolled=mine.get(c.pk, False), was_enrolled=c.pk in mine, invited=c.pk in invited,
            active_count=counts.get(c.pk, 0), now=now,
        )
        for c in courses
    }


def batch_jobs_of(*, course: Course) -> QuerySet[BatchJob]:
    """The course's batches, without the identifiers a queued job carries for its worker."""
    return BatchJob.objects.filter(course=course).select_related("requester").defer("identifiers")


def batch_jobs_for(*, course: Course, limit: int = 10) -> QuerySet[BatchJob]:
    """The latest batches for the Membership tab's table; their results rows
    (up to ENROLLMENT_SYNC_LIMIT each) stay in the database."""
    return (
        batch_jobs_of(course=course).defer("results", "upload_rows")
        .annotate(has_upload_rows=ExpressionWrapper(Q(upload_rows__isnull=False), output_field=BooleanField()))
        .order_by("-created")[:limit]
    )


def bulk_enroll_job_for(*, user, public_id) -> BulkEnrollJob | None:
    """The bulk enroll job with this public id if ``user`` requested it or is a
    platform admin; None otherwise, so that others cannot tell it exists."""
    job = BulkEnrollJob.objects.filter(public_id=public_id).first()
    if job is None or not (job.requester_id == user.pk or is_platform_admin(user)):
        return None
    return job

