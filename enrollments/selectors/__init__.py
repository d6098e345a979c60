"""Reads of enrollment state for pages, reports and the API."""

from datetime import date, datetime, time, timedelta

from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.rules import is_platform_admin
from courses.models import Course

from ..models import Allowance, BatchJob, BulkEnrollJob, Enrollment
from ..rules import SelfEnrollment, self_enrollment_decide
from .previews import membership_preview_for, membership_preview_renewing, stored_preview  # noqa: F401 (the pages' reads, from one place)


def current_enrollments(*, user) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(user=user, is_active=True).select_related("course").order_by("-created")


def enrollment_counts(*, course: Course) -> dict:
    """Active enrollments (team included) in total and per mode, every offered
    mode listed even when nobody is in it. One grouped query."""
    per_mode = dict(
        Enrollment.objects.filter(course=course, is_active=True).values_list("mode").annotate(n=Count("id")).order_by()
    )
    modes = {mode: per_mode.get(mode, 0) for mode in course.mode_list}
    for mode, n in per_mode.items():
        modes.setdefault(mode, n)
    return {"total": sum(per_mode.values()), "modes": modes}


def enrollments_over_time(*, course: Course, days: int | None = None, today: date | None = None) -> dict:
    """The Course info chart's data, for the last ``days`` days up to ``today``
    (both in the site's time zone), or from the day before the first
    enrollment when ``days`` is None. Two queries whatever the range: one count before it, one grouped by day.

    - ``new``: per day with any, the enrollments first made that day (also
      those who have left since); days without any are absent, not zero, and
      the chart's time axis keeps their width.
    - ``active``: the running total of today's active enrollments by the day
      they were first made, from the total before the range (at ``start``)
      to today's total (at ``end``); it changes only on the days listed.
    - ``start``, ``end``: the ISO dates the axis spans; ``start`` is None when
      nobody ever enrolled.
    - ``has_data``: False when the range holds nothing to draw (no enrollment
      made in it and none active from before)."""
    today = today or timezone.localdate()
    enrollments = Enrollment.objects.filter(course=course)
    start, total = None, 0
    if days is not None:
        start = today - timedelta(days=days - 1)
        # A range on the timestamp rather than on its date: the (course, created) index serves it.
        start_at = timezone.make_aware(datetime.combine(start, time.min))
        total = enrollments.filter(created__lt=start_at, is_active=True).count()
        enrollments = enrollments.filter(created__gte=start_at)
    rows = (
        enrollments.annotate(day=TruncDate("created"))
        .values("day")
        .annotate(new=Count("id"), active=Count("id", filter=Q(is_active=True)))
        .order_by("day")
    )
    baseline = total
    new, active = [], []
    for row in rows:
        day = row["day"].isoformat()
        new.append({"x": day, "y": row["new"]})
        total += row["active"]
        active.append({"x": day, "y": total})
    if start is None and new:
        # From nought the day before the first enrollment, so the first step shows.
        start = date.fromisoformat(new[0]["x"]) - timedelta(days=1)
    if not new and total == 0:
        return {"start": start and start.isoformat(), "end": today.isoformat(), "new": [], "active": [], "has_data": False}
    assert start is not None  # set by the range or, without one, from the first enrollment
    # The line runs from the start of the axis to today, also through empty days at either end.
    if not active or active[0]["x"] != start.isoformat():
        active.insert(0, {"x": start.isoformat(), "y": baseline})
    if active[-1]["x"] != today.isoformat():
        active.append({"x": today.isoformat(), "y": total})
    return {"start": start.isoformat(), "end": today.isoformat(), "new": new, "active": active, "has_data": True}


def self_enrollment_for(*, user, course: Course) -> dict:
    """What the course page needs to offer (or refuse) Enroll to this visitor:
    their enrollment row, if any, and the decision of ``self_enrollment_decide``.
    Three queries at most."""
    enrollment = Enrollment.objects.filter(user=user, course=course).first() if user.is_authenticated else None
    invited = user.is_authenticated and Allowance.objects.filter(course=course, email_key=user.email_key).exists()
    active_count = None
    if course.max_enrollments is not None:
        active_count = Enrollment.objects.filter(course=course, is_active=True).count()
    decision = self_enrollment_decide(
        course=course, is_enrolled=bool(enrollment and enrollment.is_active), was_enrolled=enrollment is not None,
        invited=invited, active_count=active_count, now=timezone.now(),
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
    counts: dict[int, int] = {}
    if capped:
        counts = dict(
            Enrollment.objects.filter(course_id__in=capped, is_active=True).values_list("course_id").annotate(n=Count("id")).order_by()
        )
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

