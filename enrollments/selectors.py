"""Reads of enrollment state for pages, reports and the API."""

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate

from courses.models import Course, CourseRole
from courses.rules import is_platform_admin

from .models import Allowance, BatchJob, BulkEnrollJob, Enrollment


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


def batch_jobs_of(*, course: Course) -> QuerySet[BatchJob]:
    """The course's batches, without the identifiers a queued job carries for its worker."""
    return BatchJob.objects.filter(course=course).select_related("requester").defer("identifiers")


def batch_jobs_for(*, course: Course, limit: int = 10) -> QuerySet[BatchJob]:
    """The latest batches for the Membership tab's table; their results rows
    (up to ENROLLMENT_SYNC_LIMIT each) stay in the database."""
    return batch_jobs_of(course=course).defer("results").order_by("-created")[:limit]


def enrollments_visible_to(*, user, course_key: str = "", username: str = "", since=None) -> QuerySet[Enrollment]:
    """Enrollments ``user`` may see in the API, optionally filtered, unordered.

    Platform admins see every enrollment; anyone else sees the enrollments of
    the courses where they hold a course role, plus their own. The course and
    the user come with each row (one query per page)."""
    qs = Enrollment.objects.select_related("user", "course").only(
        "id", "created", "is_active", "mode", "user__username", "user__email", "course__key"
    )
    if not is_platform_admin(user):
        # A subquery rather than a join on the roles: a join would repeat an
        # enrollment once per role of its course.
        managed = CourseRole.objects.filter(user=user).values("course_id")
        qs = qs.filter(Q(course_id__in=managed) | Q(user=user))
    if course_key:
        qs = qs.filter(course__key=course_key)
    if username:
        qs = qs.filter(user__username=username)
    if since is not None:
        qs = qs.filter(created__gte=since)
    return qs


def bulk_enroll_job_for(*, user, public_id) -> BulkEnrollJob | None:
    """The bulk enroll job with this public id if ``user`` requested it or is a
    platform admin; None otherwise, so that others cannot tell it exists."""
    job = BulkEnrollJob.objects.filter(public_id=public_id).first()
    if job is None or not (job.requester_id == user.pk or is_platform_admin(user)):
        return None
    return job
