"""Per-group permissions: leaders manage their own groups' codes and see their members."""

import rules

from courses.rules import is_platform_admin


@rules.predicate
def is_group_leader(user, group):
    if not (user and user.is_authenticated and user.is_active) or group is None:
        return False
    return group.leaders.filter(pk=user.pk).exists()


can_manage_group = is_platform_admin | is_group_leader

rules.add_perm("organisations.manage_group", can_manage_group)
