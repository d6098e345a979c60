"""Reads of enrollment state for pages, reports and the API."""

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate

from courses.models import Course

from .models import Allowance, BatchJob, Enrollment


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


def enrollments_over_time(*, course: Course) -> list[dict]:
    """Cumulative enrollments by the day they were created (active ones)."""
    rows = (
        Enrollment.objects.filter(course=course, is_active=True)
        .annotate(day=TruncDate("created"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    total, series = 0, []
    for row in rows:
        total += row["n"]
        series.append({"day": row["day"].isoformat(), "count": total})
    return series


def self_enrollment_context(*, user, course: Course) -> dict:
    """What the course page needs to offer (or refuse) Enroll to this visitor."""
    if not user.is_authenticated:
        return {"enrollment": None, "invited": False}
    enrollment = Enrollment.objects.filter(user=user, course=course).first()
    invited = Allowance.objects.filter(course=course, email_key=(user.email or "").lower()).exists()
    return {"enrollment": enrollment, "invited": invited}


def batch_jobs_for(*, course: Course, limit: int = 10) -> QuerySet[BatchJob]:
    return BatchJob.objects.filter(course=course).select_related("requester").order_by("-created")[:limit]
