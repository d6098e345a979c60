"""People: a person's enrollments."""


from django.contrib.auth import get_user_model
from django.db.models import OuterRef, QuerySet, Subquery

from enrollments.models import Enrollment, EnrollmentAudit

User = get_user_model()


def user_enrollments(*, user) -> QuerySet:
    """A person's enrollments with their course, newest first, each with the
    source of its latest audited change (how the person is enrolled)."""
    latest = EnrollmentAudit.objects.filter(course=OuterRef("course_id"), user=OuterRef("user_id")).order_by("-created", "-id")
    return (
        Enrollment.objects.filter(user=user).select_related("course")
        .annotate(last_source=Subquery(latest.values("source")[:1]), last_reason=Subquery(latest.values("reason")[:1]))
        .order_by("-created")
    )
