"""Who may act on groups and on direct reports, decided here and only here.

- Group leaders manage their own groups' codes and see their members; platform
  administrators (:func:`accounts.rules.is_platform_admin`) every group:
  :data:`can_manage_group` for one group, :func:`groups_led_by` for lists.
- A manager is anyone with at least one active direct report (My Team):
  :data:`is_manager`, :data:`is_own_report` for one person, :func:`team_reports`
  for lists.

Course permissions are in ``courses/rules.py``; this app sits above courses and
builds on them, never the other way round."""

import rules
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from accounts.rules import is_platform_admin

from .models import Group

User = get_user_model()


@rules.predicate
def is_group_leader(user, group) -> bool:
    if not (user and user.is_authenticated and user.is_active) or group is None:
        return False
    return group.leaders.filter(pk=user.pk).exists()


can_manage_group = is_platform_admin | is_group_leader


def groups_led_by(*, user) -> QuerySet[Group]:
    """The groups ``user`` may manage, by name: the set form of
    :data:`can_manage_group` (all for platform admins, else the ones they lead)."""
    if not (user and user.is_authenticated and user.is_active):
        return Group.objects.none()
    if is_platform_admin(user):
        return Group.objects.order_by("name", "id")
    return Group.objects.filter(leaders=user).order_by("name", "id")


def team_reports(*, manager) -> QuerySet:
    """The manager's active direct reports, by username: the people My Team
    may enroll (the set form of :data:`is_own_report`)."""
    if not (manager and manager.is_authenticated):
        return User.objects.none()
    return User.objects.filter(manager=manager, is_active=True).order_by("username")


@rules.predicate
def is_manager(user) -> bool:
    """A manager is anyone with at least one active direct report: they see My Team."""
    return team_reports(manager=user).exists()


@rules.predicate
def is_own_report(manager, person) -> bool:
    """``person`` is an active direct report of ``manager`` (no query)."""
    return bool(manager and person is not None and person.is_active and person.manager_id == manager.pk)


rules.add_perm("organisations.manage_group", can_manage_group)
