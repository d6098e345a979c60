"""Types the apps share about people."""

from typing import TypeAlias

from django.contrib.auth.models import AnonymousUser

from .models import User

# Who did something: a signed-in user, or nobody (a worker running a job whose
# requester was deleted, a signal, a system task). Services record it in the
# audit trail as "who"; an anonymous user counts as nobody.
Actor: TypeAlias = User | AnonymousUser | None


def recorded_user(actor: Actor) -> User | None:
    """The account to record as who did something (a foreign key), or None
    for nobody: an anonymous user is nobody, never a row."""
    return actor if isinstance(actor, User) and actor.is_authenticated else None
