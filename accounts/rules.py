"""Who is a platform administrator: defined here and nowhere else.

Every app asks this predicate (``User.is_platform_admin`` is the same rule for
templates); courses, groups and the organisation build their own permissions on
it. Django admin keeps its own gate, ``is_staff`` on an active account, which
this rule includes: every account that may open the admin is a platform admin."""

import rules


@rules.predicate
def is_platform_admin(user) -> bool:
    """An active account with ``is_staff`` or ``is_superuser``; False for
    anonymous users, inactive accounts and None."""
    return bool(user and user.is_authenticated and user.is_active and (user.is_staff or user.is_superuser))
