"""Changes to group membership."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from enrollments.models import Source
from enrollments.services import enrollment_batch_update

from .models import Group, GroupMembership


def user_identifier(user) -> str:
    """What to hand enrollment_batch_update for a known user: the username,
    unless it looks like an email (then the address, unique per account)."""
    return user.email if "@" in user.username else user.username


@transaction.atomic
def group_add_members(*, group: Group, users: Iterable, actor, source: str = Source.ADMIN, reason: str = "") -> list:
    """Add users to a group and enroll them in each of its courses.

    Idempotent: people already in the group stay as they are (their joining
    date is kept) and only missing enrollments are made, each audited with
    ``source``. Returns the users who were not members before. Queries grow
    with the number of the group's courses, not with the number of users."""
    users = {u.pk: u for u in users if u is not None and u.is_active}
    if not users:
        return []
    existing = set(GroupMembership.objects.filter(group=group, user_id__in=users).values_list("user_id", flat=True))
    now = timezone.now()
    # ignore_conflicts: a concurrent add of the same person is not an error, the
    # unique (user, group) constraint keeps one row.
    GroupMembership.objects.bulk_create(
        [GroupMembership(group=group, user_id=pk, joined=now, source=source) for pk in sorted(users) if pk not in existing],
        ignore_conflicts=True,
    )
    identifiers = [user_identifier(users[pk]) for pk in sorted(users)]
    # Course-id order, like every other multi-course write, so that two
    # transactions touching the same enrollments lock them in the same order.
    for course in group.courses.order_by("id"):
        enrollment_batch_update(
            course=course, identifiers=identifiers, action="enroll", auto_enroll=True, email_students=False,
            actor=actor, reason=reason or f"Joined group {group.name}", source=source,
        )
    return [users[pk] for pk in sorted(users) if pk not in existing]
