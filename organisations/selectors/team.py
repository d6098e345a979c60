"""My Team: a manager's reports and the courses they may put them into."""

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from courses.models import Course
from courses.rules import courses_managed_by

User = get_user_model()


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
        Course.objects.annotate(active_count=Count("enrollments", filter=Q(enrollments__is_active=True)))
        .filter(open_q | Q(pk__in=managed))
        .order_by("display_name", "pk")
    )
