from django.db import transaction
from rest_framework.authtoken.models import Token


@transaction.atomic
def api_token_regenerate(*, user) -> tuple[Token, bool]:
    """Replace the user's API token with a new one; the old one stops working at once.

    Returns the new token and whether there was an old one to replace."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user), deleted > 0


@transaction.atomic
def user_name_update(*, user, first_name: str, last_name: str) -> None:
    """Set the person's name (validated by AccountNameForm); blank clears it."""
    user.first_name, user.last_name = first_name, last_name
    user.save(update_fields=["first_name", "last_name"])
