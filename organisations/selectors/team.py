"""My Team: a manager's reports and the courses they may put them into."""

from django.contrib.auth import get_user_model
from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from courses.models import Course
from courses.rules import courses_managed_by
from enrollments.models import EnrollmentCount

User = get_user_model()

# The course's active enrollments from its counters (a few rows), not a COUNT over them.
_active_of_course = (
    EnrollmentCount.objects.filter(course=OuterRef("pk")).order_by().values("course").annotate(n=Sum("active")).values("n")
)


def courses_open_to_reports(*, manager, at=None) -> QuerySet:
    """Courses a manager may put their reports into from My Team: those a
    report could join by themself right now (self-enrollment on, no
    enrollment key, not invitation-only, within the enrollment window, a seat
    left), plus every course the manager may manage anyway (their course
    teams; all for platform admins). See ``team_enroll_refusals`` for the
    same policy applied at the moment of writing."""
    at = at or timezone.now()
    open_q = (
        Q(self_enrollment=True, invitation_only=False, enrollment_key="")
        & (Q(enrollment_start__isnull=True) | Q(enrollment_start__lte=at))
        & (Q(enrollment_end__isnull=True) | Q(enrollment_end__gte=at))
        & (Q(max_enrollments__isnull=True) | Q(active_count__lt=F("max_enrollments")))
    )
    managed = courses_managed_by(user=manager).values("pk")
    return (
        Course.objects.annotate(active_count=Coalesce(Subquery(_active_of_course), 0))
        .filter(open_q | Q(pk__in=managed))
        .order_by("display_name", "pk")
    )
