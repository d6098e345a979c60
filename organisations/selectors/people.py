"""People: accounts named by identifiers, and a person's enrollments."""


from django.contrib.auth import get_user_model
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.functions import Lower

from enrollment_site.lib.identifiers import Kind
from enrollments.models import Enrollment, EnrollmentAudit

User = get_user_model()


def users_by_identifier(identifiers: list) -> list[tuple]:
    """Each parsed identifier (enrollment_site.lib.identifiers) with the active
    account it names, or None: emails and usernames match whatever their case;
    of two usernames that differ only in case the exact spelling wins. Two
    queries at most, whatever the number of identifiers."""
    emails = {i.key for i in identifiers if i.kind == Kind.EMAIL}
    names = {i.key for i in identifiers if i.kind == Kind.USERNAME}
    active = User.objects.filter(is_active=True).order_by("pk")
    by_email = {u.email_key: u for u in active.annotate(email_key=Lower("email")).filter(email_key__in=emails)} if emails else {}
    by_name: dict[str, list] = {}
    if names:
        for account in active.annotate(username_key=Lower("username")).filter(username_key__in=names):
            by_name.setdefault(account.username_key, []).append(account)
    resolved = []
    for ident in identifiers:
        if ident.kind == Kind.EMAIL:
            user = by_email.get(ident.key)
        elif ident.kind == Kind.USERNAME:
            candidates = by_name.get(ident.key, [])
            user = next((u for u in candidates if u.username == ident.text), candidates[0] if candidates else None)
        else:
            user = None
        resolved.append((ident, user))
    return resolved


def user_enrollments(*, user) -> QuerySet:
    """A person's enrollments with their course, newest first, each with the
    source of its latest audited change (how the person is enrolled)."""
    latest = EnrollmentAudit.objects.filter(course=OuterRef("course_id"), user=OuterRef("user_id")).order_by("-created", "-id")
    return (
        Enrollment.objects.filter(user=user).select_related("course")
        .annotate(last_source=Subquery(latest.values("source")[:1]), last_reason=Subquery(latest.values("reason")[:1]))
        .order_by("-created")
    )
